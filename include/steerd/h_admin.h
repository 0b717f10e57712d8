/* h_admin: the admin listener (libevent evhttp on the control thread's base): /healthz,
 * /readyz, /metrics, /state, /explain, POST /reload, with a bearer token when configured
 * (compared in constant time). Separate from the player listener; loopback by default. */
#ifndef STEERD_H_ADMIN_H
#define STEERD_H_ADMIN_H

#include <stddef.h>

struct control;
struct diag;
struct event_base;
struct h_admin;

/* Binds listen ("host:port"; port 0 picks one) on base. The control is borrowed and must
 * outlive the admin. Returns NULL with the reason in d. */
struct h_admin *h_admin_new(struct event_base *base, const char *listen, struct control *ctl,
                            struct diag *d);
/* The bound address as "host:port"; 0 or -1. */
int h_admin_bound_addr(const struct h_admin *a, char *out, size_t outsz);
void h_admin_free(struct h_admin *a);

#endif
