/* log: one line per event to stderr or a file ("ts level module: msg"), level checked before
 * formatting, CR/LF and control bytes escaped. The sink is process-wide by nature (fd 2 or the
 * opened file); its state lives in log.c and is set only by main. */
#ifndef STEERD_LOG_H
#define STEERD_LOG_H

enum log_level { LOG_ERR = 0, LOG_WARN, LOG_NOTICE, LOG_INFO, LOG_DEBUG };

/* Parses "err|warn|notice|info|debug"; returns 0 or -1. */
int log_level_parse(const char *s, enum log_level *out);
void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
/* Opens (or reopens, for SIGUSR1) path for appending; NULL means stderr. Returns 0 or -1. */
int log_open(const char *path);
void log_close(void);

void log_msg(enum log_level lvl, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* As log_msg, appends ": strerror(err)". */
void log_errno(enum log_level lvl, int err, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define LOG_ENABLED(lvl) ((lvl) <= log_get_level())

#endif
