#include "steerd/cmcd.h"

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
