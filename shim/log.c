/* log.c: writes reshim's log lines. Never allocates, never uses stdio, never
 * writes to stdout; the log file (RESHIM_LOG_FILE) is opened per line, so an
 * app that closes every fd can never have its own files written by us. */
#define _GNU_SOURCE
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "reshim.h"
#include "sys.h"

static enum reshim_log_level log_level = RLOG_WARN;
static char log_file[RESHIM_PATH_MAX];

static size_t put_str(char *buf, size_t n, size_t at, const char *s, size_t max)
{
    if (!s)
        s = "(null)";
    for (size_t i = 0; s[i] && i < max && at + 1 < n; i++)
        buf[at++] = s[i];
    return at;
}

static size_t put_uint(char *buf, size_t n, size_t at, unsigned long long v, unsigned base,
                       int negative)
{
    char tmp[24];
    int i = 0;
    do {
        unsigned d = (unsigned)(v % base);
        tmp[i++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= base;
    } while (v);
    if (negative && at + 1 < n)
        buf[at++] = '-';
    while (i && at + 1 < n)
        buf[at++] = tmp[--i];
    return at;
}

size_t reshim_vformat(char *buf, size_t n, const char *fmt, va_list ap)
{
    size_t at = 0;
    if (!n)
        return 0;
    for (const char *p = fmt; *p && at + 1 < n; p++) {
        if (*p != '%') {
            buf[at++] = *p;
            continue;
        }
        p++;
        size_t prec = (size_t)-1;
        if (*p == '.') {
            p++;
            if (*p == '*') {
                prec = (size_t)va_arg(ap, int);
                p++;
            } else {
                prec = 0;
                while (*p >= '0' && *p <= '9')
                    prec = prec * 10 + (size_t)(*p++ - '0');
            }
        }
        int longs = 0, size = 0;
        while (*p == 'l') {
            longs++;
            p++;
        }
        if (*p == 'z') {
            size = 1;
            p++;
        }
        switch (*p) {
        case 's':
            at = put_str(buf, n, at, va_arg(ap, const char *), prec);
            break;
        case 'c':
            buf[at++] = (char)va_arg(ap, int);
            break;
        case 'd':
        case 'i': {
            long long v = size ? (long long)va_arg(ap, ssize_t)
                          : longs >= 2 ? va_arg(ap, long long)
                          : longs == 1 ? va_arg(ap, long)
                                       : va_arg(ap, int);
            unsigned long long mag = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
            at = put_uint(buf, n, at, mag, 10, v < 0);
            break;
        }
        case 'u':
        case 'x': {
            unsigned long long v = size ? va_arg(ap, size_t)
                                   : longs >= 2 ? va_arg(ap, unsigned long long)
                                   : longs == 1 ? va_arg(ap, unsigned long)
                                                : va_arg(ap, unsigned);
            at = put_uint(buf, n, at, v, *p == 'x' ? 16 : 10, 0);
            break;
        }
        case '%':
            buf[at++] = '%';
            break;
        case '\0':
            p--;
            break;
        default:
            buf[at++] = '%';
            if (at + 1 < n)
                buf[at++] = *p;
        }
    }
    buf[at] = '\0';
    return at;
}

size_t reshim_format(char *buf, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t len = reshim_vformat(buf, n, fmt, ap);
    va_end(ap);
    return len;
}

int log_site_admit(struct log_site *site, uint64_t now_ns, uint32_t *suppressed)
{
    uint64_t w = now_ns / LOG_WINDOW_NS + 1;
    uint64_t cur = atomic_load_explicit(&site->window, memory_order_relaxed);
    *suppressed = 0;
    if (cur != w &&
        atomic_compare_exchange_strong_explicit(&site->window, &cur, w, memory_order_relaxed,
                                                memory_order_relaxed)) {
        atomic_store_explicit(&site->count, 0, memory_order_relaxed);
        *suppressed = atomic_exchange_explicit(&site->suppressed, 0, memory_order_relaxed);
    }
    if (atomic_fetch_add_explicit(&site->count, 1, memory_order_relaxed) < LOG_BURST)
        return 1;
    atomic_fetch_add_explicit(&site->suppressed, 1, memory_order_relaxed);
    return 0;
}

void reshim_log_configure(enum reshim_log_level level, const char *file)
{
    log_level = level;
    log_file[0] = '\0';
    if (file && file[0]) {
        size_t len = strlen(file);
        if (len < sizeof log_file)
            memcpy(log_file, file, len + 1);
    }
}

int reshim_log_enabled(enum reshim_log_level level)
{
    return level <= log_level;
}

static void emit(const char *line, size_t len)
{
    int saved = errno;
    GUARD_ENTER();
    int fd = 2;
    if (log_file[0]) {
        fd = sys_openat(AT_FDCWD, log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY,
                        0600);
        if (fd < 0)
            fd = 2;
    }
    while (len) {
        ssize_t w = sys_write(fd, line, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        line += w;
        len -= (size_t)w;
    }
    if (fd != 2)
        sys_close(fd);
    GUARD_LEAVE();
    errno = saved;
}

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void reshim_log_at(struct log_site *site, enum reshim_log_level level, const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    uint32_t suppressed;
    int saved = errno;
    if (!log_site_admit(site, reshim_now_ns(), &suppressed)) {
        errno = saved;
        return;
    }
    int pid = (int)sys_getpid();
    size_t len;
    if (suppressed) {
        len = reshim_format(line, sizeof line, "reshim[%d]: %s: (%u similar lines suppressed)\n",
                            pid, level_names[level], suppressed);
        emit(line, len);
    }
    len = reshim_format(line, sizeof line, "reshim[%d]: %s: ", pid, level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    len += reshim_vformat(line + len, sizeof line - len - 1, fmt, ap);
    va_end(ap);
    line[len++] = '\n';
    emit(line, len);
    errno = saved;
}

const char *reshim_errno_name(int err, char buf[16])
{
    switch (err) {
    case 0: return "OK";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ECONNRESET: return "ECONNRESET";
    case ECONNABORTED: return "ECONNABORTED";
    case ENETUNREACH: return "ENETUNREACH";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EADDRINUSE: return "EADDRINUSE";
    case ENOENT: return "ENOENT";
    case EAGAIN: return "EAGAIN";
    case EINTR: return "EINTR";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENOBUFS: return "ENOBUFS";
    case ENOMEM: return "ENOMEM";
    case EPIPE: return "EPIPE";
    case EINPROGRESS: return "EINPROGRESS";
    default:
        reshim_format(buf, 16, "errno %d", err);
        return buf;
    }
}
