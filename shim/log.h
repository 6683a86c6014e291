/* log.h: reshim's log lines: "reshim[pid]: level: message\n", written with
 * write(2) from a stack buffer (never stdio, never malloc, never stdout),
 * rate-limited per call site. */
#ifndef RESHIM_LOG_H
#define RESHIM_LOG_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define LOG_LINE_MAX 1024
#define LOG_BURST 10                       /* lines per site per window */
#define LOG_WINDOW_NS 60000000000ull       /* 60 s */

struct log_site {
    _Atomic uint64_t window;   /* window index (now / 60 s) + 1; 0 = never used */
    _Atomic uint32_t count;
    _Atomic uint32_t suppressed;
};

/* Minimal printf: %s %d %i %u %ld %lu %lld %llu %zu %zd %x %lx %c %% (with an
 * optional precision for %s, e.g. %.40s). Async-signal-safe. Always
 * NUL-terminates; returns the length written. */
size_t reshim_vformat(char *buf, size_t n, const char *fmt, va_list ap);
size_t reshim_format(char *buf, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Rate limit decision for one site: 1 = print, 0 = suppress; *suppressed gets
 * the count of lines dropped in the window just ended (to be reported once). */
int log_site_admit(struct log_site *site, uint64_t now_ns, uint32_t *suppressed);

void reshim_log_configure(enum reshim_log_level level, const char *file);
int reshim_log_enabled(enum reshim_log_level level);
void reshim_log_at(struct log_site *site, enum reshim_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* One static rate-limit slot per call site. */
#define RLOG(level, ...)                                         \
    do {                                                         \
        if (reshim_log_enabled(level)) {                         \
            static struct log_site log_site_;                    \
            reshim_log_at(&log_site_, (level), __VA_ARGS__);     \
        }                                                        \
    } while (0)
#define LOG_ERROR(...) RLOG(RLOG_ERROR, __VA_ARGS__)
#define LOG_WARN(...) RLOG(RLOG_WARN, __VA_ARGS__)
#define LOG_INFO(...) RLOG(RLOG_INFO, __VA_ARGS__)
#define LOG_DEBUG(...) RLOG(RLOG_DEBUG, __VA_ARGS__)

/* "ECONNREFUSED" for the errnos reshim talks about, else "errno N". */
const char *reshim_errno_name(int err, char buf[16]);

#endif
