#include "steerd/cmcd.h"

#include <stddef.h>
#include <string.h>

const char *
cmcd_find(const char *s, size_t len, const char *key, size_t *vlen)
{
    size_t klen = strlen(key);
    size_t i = 0;
    while (i < len) {
        /* key */
        size_t ks = i;
        while (i < len && s[i] != '=' && s[i] != ',')
            i++;
        size_t kl = i - ks;
        const char *v = NULL;
        size_t vl = 0;
        if (i < len && s[i] == '=') {
            i++;
            if (i < len && s[i] == '"') {
                size_t vs = ++i;
                while (i < len && s[i] != '"') {
                    if (s[i] == '\\') {
                        if (i + 1 >= len)
                            return NULL;
                        i++;
                    }
                    i++;
                }
                if (i >= len)
                    return NULL; /* unterminated string */
                v = s + vs;
                vl = i - vs;
                i++;
            } else {
                size_t vs = i;
                while (i < len && s[i] != ',')
                    i++;
                v = s + vs;
                vl = i - vs;
            }
        }
        if (kl == klen && memcmp(s + ks, key, klen) == 0) {
            if (v == NULL)
                return NULL;
            *vlen = vl;
            return v;
        }
        if (i < len && s[i] != ',')
            return NULL; /* junk after a quoted value */
        i++;
    }
    return NULL;
}

const char *
cmcd_find_sid(const char *s, size_t len, size_t *sidlen)
{
    size_t vl = 0;
    const char *v = cmcd_find(s, len, "sid", &vl);
    if (v == NULL || vl == 0 || vl > CMCD_SID_MAX)
        return NULL;
    /* A string value: cmcd_find returned the inside of quotes only if the byte before is '"'. */
    if (v == s || v[-1] != '"')
        return NULL;
    for (size_t i = 0; i < vl; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c == 0x7f)
            return NULL;
    }
    *sidlen = vl;
    return v;
}

/* ---- the keys steering reads --------------------------------------------------------------- */

enum ktype {
    KT_OTLIST,  /* integer, or v2 inner list of integers: the first item */
    KT_SUMLIST, /* integer, or inner list of integers: their sum */
    KT_U32,     /* integer */
    KT_U64,     /* integer */
    KT_BOOL,    /* boolean */
    KT_STR,     /* string of at most max bytes (sid: at least 1) */
    KT_TOKEN,   /* token from the set */
    KT_STRLIST, /* inner list of strings: their number */
};

struct keydesc {
    const char *name;
    enum ktype type;
    uint32_t bit;
    size_t off;
    size_t max;         /* KT_STR: longest value; KT_TOKEN: field size */
    const char *tokens; /* KT_TOKEN: the set, each token between spaces */
};

#define F(field) offsetof(struct cmcd_report, field)

static const struct keydesc keys[] = {
    {"bl", KT_OTLIST, CMCD_KEY_BL, F(bl_ms), 0, NULL},
    {"br", KT_OTLIST, CMCD_KEY_BR, F(br_kbps), 0, NULL},
    {"bs", KT_BOOL, CMCD_KEY_BS, F(bs), 0, NULL},
    {"bsa", KT_OTLIST, CMCD_KEY_BSA, F(bsa), 0, NULL},
    {"bsd", KT_SUMLIST, CMCD_KEY_BSD, F(bsd_ms), 0, NULL},
    {"cdn", KT_STR, CMCD_KEY_CDN, F(cdn), CMCD_CDN_MAX, NULL},
    {"cid", KT_STR, CMCD_KEY_CID, F(cid), CMCD_CID_MAX, NULL},
    {"d", KT_U32, CMCD_KEY_D, F(d_ms), 0, NULL},
    {"ec", KT_STRLIST, CMCD_KEY_EC, F(nec), 0, NULL},
    {"mtp", KT_OTLIST, CMCD_KEY_MTP, F(mtp_kbps), 0, NULL},
    {"ot", KT_TOKEN, CMCD_KEY_OT, F(ot), sizeof(((struct cmcd_report *)0)->ot),
     " m a v av i c tt k o "},
    {"pt", KT_U64, CMCD_KEY_PT, F(pt_ms), 0, NULL},
    {"rtp", KT_U32, CMCD_KEY_RTP, F(rtp_kbps), 0, NULL},
    {"sf", KT_TOKEN, CMCD_KEY_SF, F(sf), sizeof(((struct cmcd_report *)0)->sf), " d h e s o "},
    {"sid", KT_STR, CMCD_KEY_SID, F(sid), CMCD_SID_MAX, NULL},
    {"st", KT_TOKEN, CMCD_KEY_ST, F(st), sizeof(((struct cmcd_report *)0)->st), " v l ll "},
    {"sta", KT_TOKEN, CMCD_KEY_STA, F(sta), sizeof(((struct cmcd_report *)0)->sta),
     " s p k r a w e f q d "},
    {"su", KT_BOOL, CMCD_KEY_SU, F(su), 0, NULL},
    {"tb", KT_OTLIST, CMCD_KEY_TB, F(tb_kbps), 0, NULL},
    {"ttfb", KT_U32, CMCD_KEY_TTFB, F(ttfb_ms), 0, NULL},
    {"v", KT_U32, CMCD_KEY_V, F(v), 0, NULL},
};

#undef F

/* RFC 8941 allows integers of up to 15 digits. */
#define SF_INT_MAX 999999999999999LL
/* Longest key looked at (RFC 8941 sets no limit; CMCD keys are short, custom ones reverse-DNS). */
#define KEY_MAX 64
/* Room for the longest string value steering keeps, plus one byte to notice a longer one. */
#define STR_ROOM (CMCD_CID_MAX + 2)

static const struct keydesc *
key_lookup(const char *k, size_t n)
{
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strlen(keys[i].name) == n && memcmp(keys[i].name, k, n) == 0)
            return &keys[i];
    return NULL;
}

enum vkind { V_INT, V_DEC, V_STR, V_TOKEN, V_BYTES, V_BOOL, V_NULL };

/* One scalar value as either syntax gives it. Strings are decoded into str (at most STR_ROOM
 * bytes kept; n is the full decoded length). */
struct value {
    enum vkind kind;
    long long i; /* V_INT (LLONG_MAX / LLONG_MIN: out of range in JSON) */
    bool b;      /* V_BOOL */
    bool json;   /* came from JSON: a token is then a string */
    bool ascii;  /* V_STR: every decoded byte is printable ASCII */
    size_t n;    /* V_STR, V_TOKEN: decoded length */
    char str[STR_ROOM];
};

static void *
field(struct cmcd_report *r, const struct keydesc *k)
{
    return (char *)r + k->off;
}

static void
key_begin(struct cmcd_report *r, const struct keydesc *k)
{
    r->has &= ~k->bit;
    switch (k->type) {
    case KT_OTLIST:
    case KT_SUMLIST:
    case KT_U32:
    case KT_STRLIST:
        *(uint32_t *)field(r, k) = 0;
        break;
    case KT_U64:
        *(uint64_t *)field(r, k) = 0;
        break;
    case KT_BOOL:
        *(bool *)field(r, k) = false;
        break;
    case KT_STR:
        *(char *)field(r, k) = '\0';
        break;
    case KT_TOKEN:
        memset(field(r, k), 0, k->max);
        break;
    }
    if (k->bit == CMCD_KEY_V)
        r->v = 1;
}

static enum cmcd_status
int_u32(const struct value *v, uint32_t *out)
{
    if (v->kind != V_INT)
        return CMCD_ETYPE;
    if (v->i < 0 || v->i > (long long)UINT32_MAX)
        return CMCD_ERANGE;
    *out = (uint32_t)v->i;
    return CMCD_OK;
}

static bool
token_in(const char *set, const char *t, size_t n)
{
    for (const char *p = set; *p != '\0'; p++) {
        if (p[0] == ' ' && strncmp(p + 1, t, n) == 0 && p[1 + n] == ' ')
            return true;
    }
    return false;
}

/* One value of key k: the bare value (in_list false) or item idx of its inner list. */
static enum cmcd_status
key_item(struct cmcd_report *r, const struct keydesc *k, const struct value *v, bool in_list,
         size_t idx)
{
    uint32_t u = 0;
    enum cmcd_status st = CMCD_OK;
    bool may_be_bare = k->type != KT_STRLIST;
    bool may_be_list = k->type == KT_OTLIST || k->type == KT_SUMLIST || k->type == KT_STRLIST;

    if (in_list ? !may_be_list : !may_be_bare)
        return CMCD_ETYPE;
    switch (k->type) {
    case KT_OTLIST:
        st = int_u32(v, &u);
        if (st == CMCD_OK && idx == 0)
            *(uint32_t *)field(r, k) = u;
        return st;
    case KT_SUMLIST: {
        st = int_u32(v, &u);
        uint32_t *sum = field(r, k);
        if (st == CMCD_OK && u > UINT32_MAX - *sum)
            st = CMCD_ERANGE;
        if (st == CMCD_OK)
            *sum += u;
        return st;
    }
    case KT_U32:
        st = int_u32(v, &u);
        if (st == CMCD_OK)
            *(uint32_t *)field(r, k) = u;
        return st;
    case KT_U64:
        if (v->kind != V_INT)
            return CMCD_ETYPE;
        if (v->i < 0 || v->i > SF_INT_MAX)
            return CMCD_ERANGE;
        *(uint64_t *)field(r, k) = (uint64_t)v->i;
        return CMCD_OK;
    case KT_BOOL:
        if (v->kind != V_BOOL)
            return CMCD_ETYPE;
        *(bool *)field(r, k) = v->b;
        return CMCD_OK;
    case KT_STR:
        if (v->kind != V_STR || !v->ascii)
            return CMCD_ETYPE;
        if (v->n > k->max || (v->n == 0 && k->bit == CMCD_KEY_SID))
            return CMCD_ERANGE;
        memcpy(field(r, k), v->str, v->n);
        ((char *)field(r, k))[v->n] = '\0';
        return CMCD_OK;
    case KT_TOKEN:
        if (v->kind != V_TOKEN && !(v->json && v->kind == V_STR))
            return CMCD_ETYPE;
        if (v->n >= k->max || !token_in(k->tokens, v->str, v->n))
            return CMCD_ETYPE;
        memcpy(field(r, k), v->str, v->n);
        ((char *)field(r, k))[v->n] = '\0';
        return CMCD_OK;
    case KT_STRLIST:
        if (v->kind != V_STR)
            return CMCD_ETYPE;
        if (r->nec < UINT32_MAX)
            r->nec++;
        return CMCD_OK;
    }
    return CMCD_ETYPE;
}

static void
key_end(struct cmcd_report *r, const struct keydesc *k, bool in_list, size_t nitems)
{
    /* An empty inner list of numbers says nothing. */
    if (in_list && nitems == 0 && k->type != KT_STRLIST)
        return;
    r->has |= k->bit;
}

/* ---- RFC 8941 dictionaries ------------------------------------------------------------------ */

struct sf {
    const char *p;
    const char *end;
};

static bool
is_lcalpha(int c)
{
    return c >= 'a' && c <= 'z';
}

static bool
is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static bool
is_tchar(int c)
{
    return is_alpha(c) || is_digit(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int
peek(const struct sf *s)
{
    return s->p < s->end ? (unsigned char)*s->p : -1;
}

static void
skip_sp(struct sf *s)
{
    while (peek(s) == ' ')
        s->p++;
}

static void
skip_ows(struct sf *s)
{
    while (peek(s) == ' ' || peek(s) == '\t')
        s->p++;
}

static enum cmcd_status
sf_key(struct sf *s, const char **key, size_t *n)
{
    int c = peek(s);
    if (!is_lcalpha(c) && c != '*')
        return CMCD_ESYNTAX;
    const char *start = s->p;
    while (s->p < s->end) {
        c = peek(s);
        if (!is_lcalpha(c) && !is_digit(c) && c != '_' && c != '-' && c != '.' && c != '*')
            break;
        s->p++;
    }
    *key = start;
    *n = (size_t)(s->p - start);
    return *n <= KEY_MAX ? CMCD_OK : CMCD_ESYNTAX;
}

static enum cmcd_status
sf_number(struct sf *s, struct value *v)
{
    bool neg = false;
    long long acc = 0;
    size_t int_digits = 0, frac_digits = 0;
    bool dot = false;

    if (peek(s) == '-') {
        neg = true;
        s->p++;
    }
    if (!is_digit(peek(s)))
        return CMCD_ESYNTAX;
    while (s->p < s->end) {
        int c = peek(s);
        if (is_digit(c)) {
            if (dot) {
                frac_digits++;
            } else {
                int_digits++;
                if (int_digits > 15)
                    return CMCD_ESYNTAX;
                acc = acc * 10 + (c - '0');
            }
        } else if (c == '.' && !dot) {
            if (int_digits > 12)
                return CMCD_ESYNTAX;
            dot = true;
        } else {
            break;
        }
        s->p++;
    }
    if (dot) {
        if (frac_digits == 0 || frac_digits > 3)
            return CMCD_ESYNTAX;
        v->kind = V_DEC;
        return CMCD_OK;
    }
    v->kind = V_INT;
    v->i = neg ? -acc : acc;
    return CMCD_OK;
}

static enum cmcd_status
sf_string(struct sf *s, struct value *v)
{
    s->p++; /* the opening quote */
    v->kind = V_STR;
    v->ascii = true;
    v->n = 0;
    while (s->p < s->end) {
        int c = peek(s);
        s->p++;
        if (c == '"')
            return CMCD_OK;
        if (c == '\\') {
            c = peek(s);
            if (c != '"' && c != '\\')
                return CMCD_ESYNTAX;
            s->p++;
        } else if (c < 0x20 || c > 0x7e) {
            return CMCD_ESYNTAX;
        }
        if (v->n < sizeof(v->str))
            v->str[v->n] = (char)c;
        v->n++;
    }
    return CMCD_ESYNTAX; /* unterminated */
}

static enum cmcd_status
sf_token(struct sf *s, struct value *v)
{
    v->kind = V_TOKEN;
    v->n = 0;
    while (s->p < s->end) {
        int c = peek(s);
        if (!is_tchar(c) && c != ':' && c != '/')
            break;
        if (v->n < sizeof(v->str))
            v->str[v->n] = (char)c;
        v->n++;
        s->p++;
    }
    return CMCD_OK;
}

static enum cmcd_status
sf_bytes(struct sf *s, struct value *v)
{
    s->p++;
    while (s->p < s->end) {
        int c = peek(s);
        s->p++;
        if (c == ':') {
            v->kind = V_BYTES;
            return CMCD_OK;
        }
        if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '/' && c != '=')
            return CMCD_ESYNTAX;
    }
    return CMCD_ESYNTAX;
}

static enum cmcd_status
sf_bare_item(struct sf *s, struct value *v)
{
    int c = peek(s);
    v->json = false;
    if (c == '-' || is_digit(c))
        return sf_number(s, v);
    if (c == '"')
        return sf_string(s, v);
    if (is_alpha(c) || c == '*')
        return sf_token(s, v);
    if (c == ':')
        return sf_bytes(s, v);
    if (c == '?') {
        s->p++;
        c = peek(s);
        if (c != '0' && c != '1')
            return CMCD_ESYNTAX;
        s->p++;
        v->kind = V_BOOL;
        v->b = c == '1';
        return CMCD_OK;
    }
    return CMCD_ESYNTAX;
}

/* Parameters (";key[=value]" ...): checked, then dropped. */
static enum cmcd_status
sf_params(struct sf *s)
{
    struct value v;
    while (peek(s) == ';') {
        const char *k;
        size_t n;
        s->p++;
        skip_sp(s);
        enum cmcd_status st = sf_key(s, &k, &n);
        if (st == CMCD_OK && peek(s) == '=') {
            s->p++;
            st = sf_bare_item(s, &v);
        }
        if (st != CMCD_OK)
            return st;
    }
    return CMCD_OK;
}

/* The value of one dictionary member; k is NULL for a key steering does not read. */
static enum cmcd_status
sf_member_value(struct sf *s, struct cmcd_report *r, const struct keydesc *k)
{
    struct value v;
    enum cmcd_status st;
    size_t n = 0;

    if (peek(s) != '(') {
        st = sf_bare_item(s, &v);
        if (st == CMCD_OK)
            st = sf_params(s);
        if (st == CMCD_OK && k != NULL)
            st = key_item(r, k, &v, false, 0);
        if (st == CMCD_OK && k != NULL)
            key_end(r, k, false, 1);
        return st;
    }
    s->p++; /* inner list */
    for (;;) {
        skip_sp(s);
        if (peek(s) == ')') {
            s->p++;
            st = sf_params(s);
            if (st == CMCD_OK && k != NULL)
                key_end(r, k, true, n);
            return st;
        }
        st = sf_bare_item(s, &v);
        if (st == CMCD_OK)
            st = sf_params(s);
        if (st == CMCD_OK && k != NULL)
            st = key_item(r, k, &v, true, n);
        if (st != CMCD_OK)
            return st;
        n++;
        if (peek(s) != ' ' && peek(s) != ')')
            return CMCD_ESYNTAX;
    }
}

static enum cmcd_status
sf_dict(const char *p, size_t len, struct cmcd_report *r)
{
    struct sf s = {p, p + len};

    skip_sp(&s);
    while (s.end > s.p && (s.end[-1] == ' ' || s.end[-1] == '\t'))
        s.end--;
    while (s.p < s.end) {
        const char *kp;
        size_t kn;
        enum cmcd_status st = sf_key(&s, &kp, &kn);
        if (st != CMCD_OK)
            return st;
        const struct keydesc *k = key_lookup(kp, kn);
        if (k != NULL)
            key_begin(r, k);
        if (peek(&s) == '=') {
            s.p++;
            st = sf_member_value(&s, r, k);
        } else {
            /* A bare key is boolean true. */
            struct value v = {.kind = V_BOOL, .b = true};
            st = sf_params(&s);
            if (st == CMCD_OK && k != NULL)
                st = key_item(r, k, &v, false, 0);
            if (st == CMCD_OK && k != NULL)
                key_end(r, k, false, 1);
        }
        if (st != CMCD_OK)
            return st;
        skip_ows(&s);
        if (s.p == s.end)
            return CMCD_OK;
        if (peek(&s) != ',')
            return CMCD_ESYNTAX;
        s.p++;
        skip_ows(&s);
        if (s.p == s.end)
            return CMCD_ESYNTAX; /* trailing comma */
    }
    return CMCD_OK;
}

/* ---- JSON objects (CMCD's JSON form) ------------------------------------------------------- */

static void
skip_json_ws(struct sf *s)
{
    while (peek(s) == ' ' || peek(s) == '\t' || peek(s) == '\n' || peek(s) == '\r')
        s->p++;
}

static int
hexval(int c)
{
    if (is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void
put_byte(struct value *v, int c)
{
    if (c < 0x20 || c > 0x7e)
        v->ascii = false;
    if (v->n < sizeof(v->str))
        v->str[v->n] = (char)c;
    v->n++;
}

static enum cmcd_status
json_string(struct sf *s, struct value *v)
{
    if (peek(s) != '"')
        return CMCD_ESYNTAX;
    s->p++;
    v->kind = V_STR;
    v->json = true;
    v->ascii = true;
    v->n = 0;
    while (s->p < s->end) {
        int c = peek(s);
        s->p++;
        if (c == '"')
            return CMCD_OK;
        if (c < 0x20)
            return CMCD_ESYNTAX;
        if (c != '\\') {
            put_byte(v, c);
            continue;
        }
        c = peek(s);
        if (c <= 0)
            return CMCD_ESYNTAX;
        s->p++;
        static const char esc[] = "\"\\/bfnrt";
        static const char out[] = "\"\\/\b\f\n\r\t";
        const char *simple = strchr(esc, c);
        if (simple != NULL) {
            put_byte(v, out[simple - esc]);
        } else if (c == 'u') {
            int cp = 0;
            for (int i = 0; i < 4; i++) {
                int h = hexval(peek(s));
                if (h < 0)
                    return CMCD_ESYNTAX;
                cp = cp * 16 + h;
                s->p++;
            }
            put_byte(v, cp < 0x80 ? cp : 0x80); /* non-ASCII: only its presence matters */
        } else {
            return CMCD_ESYNTAX;
        }
    }
    return CMCD_ESYNTAX;
}

static enum cmcd_status
json_number(struct sf *s, struct value *v)
{
    bool neg = false, frac = false;
    long long acc = 0;
    bool big = false;

    if (peek(s) == '-') {
        neg = true;
        s->p++;
    }
    if (!is_digit(peek(s)))
        return CMCD_ESYNTAX;
    if (peek(s) == '0') {
        s->p++;
        if (is_digit(peek(s)))
            return CMCD_ESYNTAX; /* leading zero */
    }
    while (is_digit(peek(s))) {
        if (acc > SF_INT_MAX / 10)
            big = true;
        else
            acc = acc * 10 + (peek(s) - '0');
        s->p++;
    }
    if (peek(s) == '.') {
        s->p++;
        if (!is_digit(peek(s)))
            return CMCD_ESYNTAX;
        while (is_digit(peek(s)))
            s->p++;
        frac = true;
    }
    if (peek(s) == 'e' || peek(s) == 'E') {
        s->p++;
        if (peek(s) == '+' || peek(s) == '-')
            s->p++;
        if (!is_digit(peek(s)))
            return CMCD_ESYNTAX;
        while (is_digit(peek(s)))
            s->p++;
        frac = true;
    }
    v->json = true;
    if (frac) {
        v->kind = V_DEC;
        return CMCD_OK;
    }
    v->kind = V_INT;
    if (big || acc > SF_INT_MAX)
        v->i = neg ? -SF_INT_MAX - 1 : SF_INT_MAX + 1;
    else
        v->i = neg ? -acc : acc;
    return CMCD_OK;
}

static enum cmcd_status
json_literal(struct sf *s, const char *word, struct value *v)
{
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return CMCD_ESYNTAX;
    s->p += n;
    v->json = true;
    v->kind = word[0] == 'n' ? V_NULL : V_BOOL;
    v->b = word[0] == 't';
    return CMCD_OK;
}

static enum cmcd_status
json_scalar(struct sf *s, struct value *v)
{
    int c = peek(s);
    if (c == '"')
        return json_string(s, v);
    if (c == '-' || is_digit(c))
        return json_number(s, v);
    if (c == 't')
        return json_literal(s, "true", v);
    if (c == 'f')
        return json_literal(s, "false", v);
    if (c == 'n')
        return json_literal(s, "null", v);
    return CMCD_ESYNTAX;
}

/* The value of one member. A syntax error wins over a type error found earlier in the same
 * value, so the caller knows whether it can go on after it. */
static enum cmcd_status
json_member_value(struct sf *s, struct cmcd_report *r, const struct keydesc *k)
{
    struct value v;
    enum cmcd_status st, verdict = CMCD_OK;
    size_t n = 0;

    if (peek(s) != '[') {
        st = json_scalar(s, &v);
        if (st != CMCD_OK)
            return st;
        if (k == NULL)
            return CMCD_OK;
        st = key_item(r, k, &v, false, 0);
        if (st == CMCD_OK)
            key_end(r, k, false, 1);
        return st;
    }
    s->p++;
    skip_json_ws(s);
    if (peek(s) == ']') {
        s->p++;
        if (k != NULL)
            key_end(r, k, true, 0);
        return CMCD_OK;
    }
    for (;;) {
        skip_json_ws(s);
        st = json_scalar(s, &v);
        if (st != CMCD_OK)
            return st;
        if (k != NULL && verdict == CMCD_OK)
            verdict = key_item(r, k, &v, true, n);
        n++;
        skip_json_ws(s);
        if (peek(s) == ']') {
            s->p++;
            if (k != NULL && verdict == CMCD_OK)
                key_end(r, k, true, n);
            return verdict;
        }
        if (peek(s) != ',')
            return CMCD_ESYNTAX;
        s->p++;
    }
}

/* One JSON object into r. Returns CMCD_ESYNTAX when the text is not JSON (s is then
 * unusable), or a type/range error after the whole object has been read. */
static enum cmcd_status
json_object(struct sf *s, struct cmcd_report *r)
{
    enum cmcd_status verdict = CMCD_OK;
    struct value key;

    skip_json_ws(s);
    if (peek(s) != '{')
        return CMCD_ESYNTAX;
    s->p++;
    skip_json_ws(s);
    if (peek(s) == '}') {
        s->p++;
        return CMCD_OK;
    }
    for (;;) {
        skip_json_ws(s);
        enum cmcd_status st = json_string(s, &key);
        if (st != CMCD_OK)
            return st;
        skip_json_ws(s);
        if (peek(s) != ':')
            return CMCD_ESYNTAX;
        s->p++;
        skip_json_ws(s);
        const struct keydesc *k = NULL;
        if (key.n <= sizeof(key.str) && key.ascii)
            k = key_lookup(key.str, key.n);
        if (k != NULL)
            key_begin(r, k);
        st = json_member_value(s, r, verdict == CMCD_OK ? k : NULL);
        if (st == CMCD_ESYNTAX)
            return st;
        if (verdict == CMCD_OK)
            verdict = st;
        skip_json_ws(s);
        if (peek(s) == '}') {
            s->p++;
            return verdict;
        }
        if (peek(s) != ',')
            return CMCD_ESYNTAX;
        s->p++;
    }
}

/* ---- public parsers ------------------------------------------------------------------------ */

void
cmcd_report_init(struct cmcd_report *r)
{
    memset(r, 0, sizeof(*r));
    r->v = 1;
}

enum cmcd_status
cmcd_parse(const char *s, size_t len, struct cmcd_report *out)
{
    struct cmcd_report tmp;
    enum cmcd_status st = CMCD_ERANGE;

    cmcd_report_init(&tmp);
    if (len <= CMCD_PAYLOAD_MAX)
        st = sf_dict(s, len, &tmp);
    if (st != CMCD_OK)
        cmcd_report_init(&tmp);
    *out = tmp;
    return st;
}

/* Percent-decodes q[0..len) into out (room for CMCD_PAYLOAD_MAX bytes). */
static enum cmcd_status
pct_decode(const char *q, size_t len, char *out, size_t *outlen)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)q[i];
        if (c == '%') {
            int hi = i + 2 < len ? hexval((unsigned char)q[i + 1]) : -1;
            int lo = i + 2 < len ? hexval((unsigned char)q[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return CMCD_ESYNTAX;
            c = hi * 16 + lo;
            i += 2;
        }
        if (n == CMCD_PAYLOAD_MAX)
            return CMCD_ERANGE;
        out[n++] = (char)c;
    }
    *outlen = n;
    return CMCD_OK;
}

enum cmcd_status
cmcd_parse_query(const char *q, size_t len, struct cmcd_report *out)
{
    const char *val = NULL;
    size_t vlen = 0;
    size_t i = 0;

    cmcd_report_init(out);
    if (len > 0 && q[0] == '?')
        i = 1;
    while (i <= len) {
        size_t start = i;
        while (i < len && q[i] != '&')
            i++;
        size_t alen = i - start;
        if (alen >= 5 && memcmp(q + start, "CMCD=", 5) == 0) {
            if (val != NULL)
                return CMCD_ESYNTAX;
            val = q + start + 5;
            vlen = alen - 5;
        } else if (alen == 4 && memcmp(q + start, "CMCD", 4) == 0) {
            if (val != NULL)
                return CMCD_ESYNTAX;
            val = q + start + 4; /* "CMCD" alone: an empty payload */
            vlen = 0;
        }
        i++;
    }
    if (val == NULL)
        return CMCD_ABSENT;

    char dec[CMCD_PAYLOAD_MAX];
    size_t dlen = 0;
    enum cmcd_status st = pct_decode(val, vlen, dec, &dlen);
    if (st != CMCD_OK)
        return st;
    return cmcd_parse(dec, dlen, out);
}

int
cmcd_header_index(const char *name, size_t len)
{
    static const char *const names[CMCD_NHEADERS] = {"cmcd-object", "cmcd-request", "cmcd-session",
                                                     "cmcd-status"};
    for (int h = 0; h < CMCD_NHEADERS; h++) {
        if (strlen(names[h]) != len)
            continue;
        size_t i = 0;
        while (i < len) {
            int c = (unsigned char)name[i];
            if (c >= 'A' && c <= 'Z')
                c += 'a' - 'A';
            if (c != names[h][i])
                break;
            i++;
        }
        if (i == len)
            return h;
    }
    return -1;
}

enum cmcd_status
cmcd_parse_headers(const char *const vals[CMCD_NHEADERS], const size_t lens[CMCD_NHEADERS],
                   struct cmcd_report *out)
{
    struct cmcd_report tmp;
    bool any = false;

    cmcd_report_init(&tmp);
    cmcd_report_init(out);
    for (int h = 0; h < CMCD_NHEADERS; h++) {
        if (vals[h] == NULL)
            continue;
        any = true;
        if (lens[h] > CMCD_PAYLOAD_MAX)
            return CMCD_ERANGE;
        /* Parsing into the same report merges: each key overwrites only its own field. */
        enum cmcd_status st = sf_dict(vals[h], lens[h], &tmp);
        if (st != CMCD_OK)
            return st;
    }
    if (!any)
        return CMCD_ABSENT;
    *out = tmp;
    return CMCD_OK;
}

/* ---- bodies -------------------------------------------------------------------------------- */

struct body {
    cmcd_report_fn fn;
    void *arg;
    struct cmcd_body_result *res;
};

static void
count(struct body *b, enum cmcd_status st, const struct cmcd_report *r)
{
    if (st == CMCD_OK && b->res->ok >= CMCD_BODY_MAX_REPORTS)
        st = CMCD_ERANGE;
    if (st == CMCD_OK) {
        b->res->ok++;
        if (b->fn != NULL)
            b->fn(r, b->arg);
        return;
    }
    if (b->res->bad == 0)
        b->res->first_error = st;
    if (b->res->bad < UINT32_MAX)
        b->res->bad++;
}

/* A JSON array of objects at s: checked whole first, then each object is one report.
 * Returns false on a syntax error (nothing was reported). */
static bool
json_array(struct sf *s, struct body *b, bool deliver)
{
    struct cmcd_report r;

    s->p++; /* '[' */
    skip_json_ws(s);
    if (peek(s) == ']') {
        s->p++;
        return true;
    }
    for (;;) {
        cmcd_report_init(&r);
        enum cmcd_status st = json_object(s, &r);
        if (st == CMCD_ESYNTAX)
            return false;
        if (deliver) {
            if (st != CMCD_OK)
                cmcd_report_init(&r);
            count(b, st, &r);
        }
        skip_json_ws(s);
        if (peek(s) == ']') {
            s->p++;
            return true;
        }
        if (peek(s) != ',')
            return false;
        s->p++;
    }
}

/* The rest of the current line holds only blanks. */
static bool
line_ends(struct sf *s)
{
    while (peek(s) == ' ' || peek(s) == '\t' || peek(s) == '\r')
        s->p++;
    if (peek(s) == '\n') {
        s->p++;
        return true;
    }
    return s->p == s->end;
}

void
cmcd_parse_body(const char *body, size_t len, cmcd_report_fn fn, void *arg,
                struct cmcd_body_result *res)
{
    struct body b = {fn, arg, res};
    struct sf s = {body, body + len};

    memset(res, 0, sizeof(*res));
    res->first_error = CMCD_OK;
    while (s.p < s.end) {
        skip_json_ws(&s);
        if (s.p == s.end)
            break;
        int c = peek(&s);
        if (c == '[' || c == '{') {
            struct sf probe = s;
            bool ok;
            if (c == '[') {
                ok = json_array(&probe, &b, false);
                if (ok) {
                    json_array(&s, &b, true);
                    ok = line_ends(&s);
                }
            } else {
                struct cmcd_report r;
                cmcd_report_init(&r);
                enum cmcd_status st = json_object(&s, &r);
                ok = st != CMCD_ESYNTAX && line_ends(&s);
                if (ok) {
                    if (st != CMCD_OK)
                        cmcd_report_init(&r);
                    count(&b, st, &r);
                }
            }
            if (!ok) {
                count(&b, CMCD_ESYNTAX, NULL);
                return;
            }
            continue;
        }
        const char *eol = memchr(s.p, '\n', (size_t)(s.end - s.p));
        const char *stop = eol != NULL ? eol : s.end;
        size_t n = (size_t)(stop - s.p);
        if (n > 0 && s.p[n - 1] == '\r')
            n--;
        struct cmcd_report r;
        enum cmcd_status st = cmcd_parse(s.p, n, &r);
        count(&b, st, &r);
        s.p = eol != NULL ? eol + 1 : s.end;
    }
}

const char *
cmcd_status_str(enum cmcd_status s)
{
    switch (s) {
    case CMCD_OK:
        return "ok";
    case CMCD_ABSENT:
        return "absent";
    case CMCD_ESYNTAX:
        return "syntax";
    case CMCD_ETYPE:
        return "type";
    case CMCD_ERANGE:
        return "range";
    }
    return "unknown";
}
