#include "steerd/diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "steerd/util.h"

void
diag_init(struct diag *d)
{
    memset(d, 0, sizeof(*d));
}

void
diag_free(struct diag *d)
{
    for (size_t i = 0; i < d->count; i++)
        free(d->lines[i]);
    free(d->lines);
    memset(d, 0, sizeof(*d));
}

void
diag_add(struct diag *d, const char *fmt, ...)
{
    if (d == NULL)
        return;
    if (d->count >= DIAG_MAX_LINES) {
        d->dropped++;
        return;
    }
    struct buf b;
    buf_init(&b, 4096);
    va_list ap;
    va_start(ap, fmt);
    char tmp[1024];
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        tmp[0] = '\0';
    /* One line per problem: control bytes from file contents never split a line. */
    for (const char *p = tmp; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f)
            buf_printf(&b, "\\x%02x", c);
        else
            buf_append(&b, p, 1);
    }
    if (n > 0 && (size_t)n >= sizeof(tmp))
        buf_puts(&b, "..."); /* cut to sizeof(tmp) - 1 bytes: say so */
    d->lines = xrealloc(d->lines, (d->count + 1) * sizeof(*d->lines));
    d->lines[d->count++] = b.data ? b.data : xstrdup("");
}

char *
diag_join(const struct diag *d)
{
    struct buf b;
    buf_init(&b, 0);
    for (size_t i = 0; i < d->count; i++) {
        if (i)
            buf_append(&b, "\n", 1);
        buf_puts(&b, d->lines[i]);
    }
    if (d->dropped)
        buf_printf(&b, "%s(%zu more problems not shown)", d->count ? "\n" : "", d->dropped);
    return b.data ? b.data : xstrdup("");
}
