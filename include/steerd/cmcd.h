/* cmcd: Common Media Client Data (CTA-5004) key/value lists as players send them in the CMCD
 * query argument and CMCD-* headers. Pure; bounded; never allocates. */
#ifndef STEERD_CMCD_H
#define STEERD_CMCD_H

#include <stddef.h>

#define CMCD_SID_MAX 64

/* Finds key in a CMCD list s[0..len) ("k1=v1,k2,sid=\"abc\"") and returns a pointer to its value
 * (quotes removed for a string value) with *vlen set, or NULL when absent or malformed. */
const char *cmcd_find(const char *s, size_t len, const char *key, size_t *vlen);

/* The session id (sid) of a CMCD list: a quoted string of 1..CMCD_SID_MAX bytes without
 * controls. Returns NULL when absent, unquoted, empty, too long or malformed. */
const char *cmcd_find_sid(const char *s, size_t len, size_t *sidlen);

#endif
