/* diag: a caller-owned list of diagnostic lines ("FILE:LINE:COL: msg" or "json.path: msg").
 * Functions that can fail take a struct diag * and add one line per problem. */
#ifndef STEERD_DIAG_H
#define STEERD_DIAG_H

#include <stddef.h>

#define DIAG_MAX_LINES 256

struct diag {
    char **lines;
    size_t count;
    size_t dropped; /* lines not kept past DIAG_MAX_LINES */
};

void diag_init(struct diag *d);
void diag_free(struct diag *d);
void diag_add(struct diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Joins all lines with '\n' into a new string the caller frees. */
char *diag_join(const struct diag *d);

#endif
