/* util: allocation that aborts on OOM, bounded growable buffers, small string helpers.
 * Base layer: libc only. */
#ifndef STEERD_UTIL_H
#define STEERD_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UTIL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Allocation: abort with a message on OOM, so error paths stay about real failures. */
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* A growable byte buffer with a hard cap set at init. data is always NUL-terminated
 * (the terminator is not counted in len). The caller owns the struct; buf_free releases data. */
struct buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;    /* hard limit on len; 0 = SIZE_MAX */
    bool overflow; /* sticky: an append would have exceeded max */
};

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
/* Appends; on exceeding max nothing is appended, overflow is set and -1 returned. */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal (with quotes), escaping as RFC 8259 requires. */
int buf_json_str(struct buf *b, const char *s);
/* Makes room for extra more bytes (and the terminator) without changing len, so that appends up
 * to that size do not reallocate. On exceeding max nothing changes, overflow is set and -1 is
 * returned. */
int buf_reserve(struct buf *b, size_t extra);

/* Frees n strings and the array holding them; accepts NULL. */
void util_strv_free(char **v, size_t n);
/* Index of the first of v[0..n) equal to s, or -1. */
long util_strv_index(char *const *v, size_t n, const char *s);

/* Parses a whole decimal unsigned number in [min,max]; returns 0 or -1. */
int util_parse_u64(const char *s, size_t len, uint64_t min, uint64_t max, uint64_t *out);

/* Constant-time comparison of two byte strings; true when equal. */
bool util_ct_equal(const void *a, size_t alen, const void *b, size_t blen);

/* 64-bit hash (FNV-1a followed by a murmur3 finalizer); stable across runs and builds. */
uint64_t util_hash64(const void *p, size_t n, uint64_t seed);

/* Monotonic and wall clocks in milliseconds (the only clock reads; pure modules take `now`). */
uint64_t util_now_ms(void);

/* Process-wide allocator settings for steerd's workload, called once at the start of main():
 * glibc serves blocks from 128 KiB up with fresh mmap()s and hands freed heap tops back at
 * once, so rewriting a large manifest (libxml2's input copy, text nodes, the output) page-faults
 * its whole working set on every request. Blocks below 4 MiB come from the heap and up to 16
 * MiB of free heap top is kept. */
void util_tune_malloc(void);
uint64_t util_wall_ms(void);

#endif
