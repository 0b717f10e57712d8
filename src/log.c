#include "steerd/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* The log sink is process state by nature: one fd shared by every thread, written with one
 * write(2) per line so lines never interleave. Only main sets it (log_open/log_set_level). */
static _Atomic int log_fd = 2;
static _Atomic int log_level = LOG_INFO;

static const char *const level_names[] = {"err", "warn", "notice", "info", "debug"};

int
log_level_parse(const char *s, enum log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

void
log_set_level(enum log_level lvl)
{
    atomic_store(&log_level, (int)lvl);
}

enum log_level
log_get_level(void)
{
    return (enum log_level)atomic_load_explicit(&log_level, memory_order_relaxed);
}

int
log_open(const char *path)
{
    int fd = 2;
    if (path != NULL) {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0)
            return -1;
    }
    int old = atomic_exchange(&log_fd, fd);
    if (old != 2)
        close(old);
    return 0;
}

void
log_close(void)
{
    int old = atomic_exchange(&log_fd, 2);
    if (old != 2)
        close(old);
}

static void
log_emit(enum log_level lvl, int err, const char *module, const char *fmt, va_list ap)
{
    char msg[2048], line[4200];
    struct timeval tv;
    struct tm tm;
    size_t n = 0;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n += strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %s %s: ", (long)tv.tv_usec / 1000,
                          level_names[lvl], module);
    /* Escape CR/LF and controls so a logged value can never forge a line. */
    for (const unsigned char *p = (const unsigned char *)msg; *p && n < sizeof(line) - 80; p++) {
        if (*p < 0x20 || *p == 0x7f)
            n += (size_t)snprintf(line + n, sizeof(line) - n, "\\x%02x", *p);
        else
            line[n++] = (char)*p;
    }
    if (err != 0)
        n += (size_t)snprintf(line + n, sizeof(line) - n, ": %s", strerror(err));
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    ssize_t w = write(atomic_load_explicit(&log_fd, memory_order_relaxed), line, n);
    (void)w;
}

void
log_msg(enum log_level lvl, const char *module, const char *fmt, ...)
{
    if (!LOG_ENABLED(lvl))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_emit(lvl, 0, module, fmt, ap);
    va_end(ap);
}

void
log_errno(enum log_level lvl, int err, const char *module, const char *fmt, ...)
{
    if (!LOG_ENABLED(lvl))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_emit(lvl, err, module, fmt, ap);
    va_end(ap);
}
