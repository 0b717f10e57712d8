#include "steerd/netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "steerd/util.h"

/* Longest accepted literal: a full IPv6 address with an embedded dotted quad is 45 bytes. */
#define LITERAL_MAX 64

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static void
set_v4(struct netaddr *out, const void *v4)
{
    memcpy(out->b, v4_mapped_prefix, sizeof(v4_mapped_prefix));
    memcpy(out->b + 12, v4, 4);
}

/* Dotted quad with exactly four decimal parts 0..255 and no leading zeros. inet_pton already
 * insists on this; the explicit check keeps the rule independent of the libc. */
static bool
is_strict_dotted_quad(const char *s, size_t len)
{
    size_t parts = 0, i = 0;
    while (i < len) {
        size_t start = i;
        unsigned v = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            v = v * 10 + (unsigned)(s[i] - '0');
            i++;
            if (i - start > 3)
                return false;
        }
        size_t n = i - start;
        if (n == 0 || v > 255 || (n > 1 && s[start] == '0'))
            return false;
        parts++;
        if (i == len)
            break;
        if (s[i] != '.' || parts == 4)
            return false;
        i++;
        if (i == len)
            return false;
    }
    return parts == 4;
}

int
netaddr_parse(const char *s, size_t len, struct netaddr *out)
{
    char tmp[LITERAL_MAX];
    if (s == NULL || len == 0 || len >= sizeof(tmp))
        return -1;
    if (memchr(s, '\0', len) != NULL)
        return -1;
    memcpy(tmp, s, len);
    tmp[len] = '\0';

    if (memchr(tmp, ':', len) == NULL) {
        struct in_addr a4;
        if (!is_strict_dotted_quad(tmp, len) || inet_pton(AF_INET, tmp, &a4) != 1)
            return -1;
        set_v4(out, &a4);
        return 0;
    }
    /* inet_pton(AF_INET6) rejects zone ids ("%eth0"), brackets and ports. */
    struct in6_addr a6;
    if (inet_pton(AF_INET6, tmp, &a6) != 1)
        return -1;
    memcpy(out->b, &a6, 16);
    return 0;
}

static bool
host_bits_zero(const struct netaddr *a, unsigned prefix)
{
    for (unsigned i = 0; i < 16; i++) {
        unsigned bit0 = i * 8;
        uint8_t mask;
        if (bit0 + 8 <= prefix)
            continue;
        if (bit0 >= prefix)
            mask = 0xff;
        else
            mask = (uint8_t)(0xffu >> (prefix - bit0));
        if ((a->b[i] & mask) != 0)
            return false;
    }
    return true;
}

int
netaddr_parse_cidr(const char *s, struct netaddr_cidr *out)
{
    if (s == NULL)
        return -1;
    size_t len = strlen(s);
    const char *slash = memchr(s, '/', len);
    size_t alen = slash ? (size_t)(slash - s) : len;
    struct netaddr a;
    if (netaddr_parse(s, alen, &a) != 0)
        return -1;
    /* A dotted-quad literal is IPv4 (prefix counted from bit 96); an IPv6 literal keeps its
     * prefix as written, even when the address itself is IPv4-mapped. */
    bool v4_literal = memchr(s, ':', alen) == NULL;
    unsigned prefix = 128;
    if (slash != NULL) {
        const char *p = slash + 1;
        size_t plen = len - alen - 1;
        uint64_t v;
        if (plen == 0 || plen > 3 || (plen > 1 && p[0] == '0'))
            return -1;
        if (util_parse_u64(p, plen, 0, v4_literal ? 32 : 128, &v) != 0)
            return -1;
        prefix = (unsigned)v + (v4_literal ? 96u : 0u);
    }
    if (!host_bits_zero(&a, prefix))
        return -1;
    out->addr = a;
    out->prefix = (uint8_t)prefix;
    return 0;
}

int
netaddr_from_sockaddr(const struct sockaddr *sa, struct netaddr *out)
{
    if (sa == NULL)
        return -1;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in sin;
        memcpy(&sin, sa, sizeof(sin));
        set_v4(out, &sin.sin_addr);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, sa, sizeof(sin6));
        memcpy(out->b, &sin6.sin6_addr, 16);
        return 0;
    }
    return -1;
}

bool
netaddr_is_v4(const struct netaddr *a)
{
    return memcmp(a->b, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0;
}

bool
netaddr_in_cidr(const struct netaddr *a, const struct netaddr_cidr *c)
{
    unsigned prefix = c->prefix > 128 ? 128 : c->prefix;
    unsigned full = prefix / 8, rest = prefix % 8;
    if (memcmp(a->b, c->addr.b, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff00u >> rest);
    return (a->b[full] & mask) == (c->addr.b[full] & mask);
}

static bool
v4_is_internal(const uint8_t *v4)
{
    static const struct {
        uint8_t net[4];
        unsigned prefix;
    } ranges[] = {
        {{0, 0, 0, 0}, 8},    {{10, 0, 0, 0}, 8},     {{100, 64, 0, 0}, 10},
        {{127, 0, 0, 0}, 8},  {{169, 254, 0, 0}, 16}, {{172, 16, 0, 0}, 12},
        {{192, 0, 0, 0}, 24}, {{192, 168, 0, 0}, 16}, {{198, 18, 0, 0}, 15},
        {{224, 0, 0, 0}, 4},  {{240, 0, 0, 0}, 4},
    };
    uint32_t a = (uint32_t)v4[0] << 24 | (uint32_t)v4[1] << 16 | (uint32_t)v4[2] << 8 | v4[3];
    for (size_t i = 0; i < UTIL_ARRAY_LEN(ranges); i++) {
        const uint8_t *n = ranges[i].net;
        uint32_t net = (uint32_t)n[0] << 24 | (uint32_t)n[1] << 16 | (uint32_t)n[2] << 8 | n[3];
        uint32_t mask = ~(uint32_t)0 << (32 - ranges[i].prefix);
        if ((a & mask) == net)
            return true;
    }
    return false;
}

bool
netaddr_is_internal(const struct netaddr *a)
{
    static const uint8_t zero12[12] = {0};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    const uint8_t *b = a->b;

    /* IPv4-mapped, IPv4-compatible (:: and ::1 included: their last four bytes are in
     * 0.0.0.0/8) and NAT64 forms carry an IPv4 address in their last four bytes. */
    if (netaddr_is_v4(a) || memcmp(b, zero12, 12) == 0 || memcmp(b, nat64, 12) == 0)
        return v4_is_internal(b + 12);
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) /* fe80::/10 link-local */
        return true;
    if ((b[0] & 0xfe) == 0xfc) /* fc00::/7 unique local */
        return true;
    return b[0] == 0xff; /* ff00::/8 multicast */
}

void
netaddr_format(const struct netaddr *a, char *out)
{
    if (netaddr_is_v4(a)) {
        if (inet_ntop(AF_INET, a->b + 12, out, NETADDR_STRLEN) == NULL)
            out[0] = '\0';
        return;
    }
    struct in6_addr a6;
    memcpy(&a6, a->b, 16);
    if (inet_ntop(AF_INET6, &a6, out, NETADDR_STRLEN) == NULL)
        out[0] = '\0';
}
