/* netaddr: IPv4/IPv6 addresses and CIDR prefixes in one 16-byte form (IPv4 is stored
 * IPv4-mapped, ::ffff:a.b.c.d, with its prefix length + 96). Pure, libc only. */
#ifndef STEERD_NETADDR_H
#define STEERD_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NETADDR_STRLEN 46 /* INET6_ADDRSTRLEN */

struct sockaddr;

struct netaddr {
    uint8_t b[16];
};

struct netaddr_cidr {
    struct netaddr addr; /* host bits below the prefix are zero */
    uint8_t prefix;      /* 0..128, in the 16-byte form */
};

/* Parses a literal IPv4 or IPv6 address (no brackets, no port, no zone) of len bytes.
 * Returns 0 or -1. Leading-zero or short IPv4 forms ("127.1", "0x7f.0.0.1") are rejected. */
int netaddr_parse(const char *s, size_t len, struct netaddr *out);
/* Parses "addr/len" or a bare address (a host prefix). Returns 0 or -1 (bad syntax, prefix out of
 * range, or host bits set below the prefix). */
int netaddr_parse_cidr(const char *s, struct netaddr_cidr *out);
/* Converts an AF_INET or AF_INET6 sockaddr; returns 0 or -1. */
int netaddr_from_sockaddr(const struct sockaddr *sa, struct netaddr *out);
bool netaddr_is_v4(const struct netaddr *a);
bool netaddr_in_cidr(const struct netaddr *a, const struct netaddr_cidr *c);
/* True for an address steerd must not connect to or send players to unless the configuration
 * allows it (allow_targets): IPv4 0.0.0.0/8, 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12,
 * 192.0.0.0/24, 192.168/16, 198.18/15, 224/4 and 240/4 (255.255.255.255 included); IPv6 ::,
 * ::1, fe80::/10, fc00::/7, ff00::/8; and those IPv4 ranges written IPv4-mapped (::ffff:0:0/96),
 * IPv4-compatible (::/96) or NAT64 (64:ff9b::/96). */
bool netaddr_is_internal(const struct netaddr *a);
/* Formats as dotted quad for IPv4, RFC 5952 text for IPv6. out has NETADDR_STRLEN bytes. */
void netaddr_format(const struct netaddr *a, char *out);

#endif
