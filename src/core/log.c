#include "core/log.h"

#include <math.h>
#include <openssl/err.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/logq.h"
#include "core/utf8.h"
#include "core/xalloc.h"

/* Most lines fit the stack; longer ones move to the heap. */
#define LOG_STACK_BYTES 2048
/* The queue while serving: about 4,000 access lines. What a SIGKILL can
 * lose is bounded by it and by the batch delay (README, Logging). */
#define LOG_RING_BYTES (1024 * 1024)
#define LOG_BATCH_US 2000

static enum log_level log_min = LOG_INFO;
static enum log_format log_fmt = LOG_TEXT;
/* Synchronous mode only: keeps a long line whole against another thread's. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static struct logq *_Atomic log_q;
static pthread_t log_main_thread;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* One line being built: on the stack until it outgrows it. */
struct lbuf {
    char *p;
    size_t len, cap;
    char stack[LOG_STACK_BYTES];
};

void log_setup(enum log_level level, enum log_format format)
{
    log_min = level;
    log_fmt = format;
}

int log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

int log_format_parse(const char *s)
{
    if (strcmp(s, "text") == 0)
        return LOG_TEXT;
    if (strcmp(s, "json") == 0)
        return LOG_JSON;
    return -1;
}

static void lbuf_init(struct lbuf *b)
{
    b->p = b->stack;
    b->len = 0;
    b->cap = sizeof(b->stack);
}

static void lbuf_cleanup(struct lbuf *b)
{
    if (b->p != b->stack)
        free(b->p);
}

static void lbuf_grow(struct lbuf *b, size_t more)
{
    size_t cap = b->cap;

    while (cap - b->len < more)
        cap *= 2;
    if (b->p == b->stack) {
        b->p = xmalloc(cap);
        memcpy(b->p, b->stack, b->len);
    } else {
        b->p = xrealloc(b->p, cap);
    }
    b->cap = cap;
}

static void lbuf_put(struct lbuf *b, const char *s, size_t n)
{
    if (b->cap - b->len < n)
        lbuf_grow(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void lbuf_puts(struct lbuf *b, const char *s)
{
    lbuf_put(b, s, strlen(s));
}

static void lbuf_putc(struct lbuf *b, char c)
{
    lbuf_put(b, &c, 1);
}

/* The bytes of printf("%.10g", v): integers below 10^10 directly, the
 * rest through snprintf. */
static void lbuf_num(struct lbuf *b, double v)
{
    char tmp[40];
    int n;

    if (v > -1e10 && v < 1e10 && v == (double)(int64_t)v && !(v == 0 && signbit(v))) {
        int64_t i = (int64_t)v;
        uint64_t u = i < 0 ? (uint64_t)(-i) : (uint64_t)i;
        char *e = tmp + sizeof(tmp), *p = e;
        do {
            *--p = (char)('0' + u % 10);
            u /= 10;
        } while (u != 0);
        if (i < 0)
            *--p = '-';
        lbuf_put(b, p, (size_t)(e - p));
        return;
    }
    n = snprintf(tmp, sizeof(tmp), "%.10g", v);
    if (n > 0)
        lbuf_put(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* The one escaping of logged text, messages and fields alike, in both
 * formats: the body of a JSON string. Quotes and backslashes get a backslash,
 * control characters (newlines too, so nobody forges a line: CWE-117) and DEL
 * become \u00XX, and a byte outside well-formed UTF-8 becomes \\xNN (the
 * text \xNN once decoded), so a JSON line stays valid for any bytes. */
static void log_escape(struct lbuf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);

    while (n > 0) {
        size_t run = 0, len;
        /* Plain printable ASCII goes out in one copy. */
        while (run < n && p[run] >= 0x20 && p[run] < 0x7f && p[run] != '"' && p[run] != '\\')
            run++;
        if (run > 0) {
            lbuf_put(b, (const char *)p, run);
            p += run;
            n -= run;
            continue;
        }
        len = utf8_seq_len(p, n);
        if (len == 0) {
            char e[5] = {'\\', '\\', 'x', hex[*p >> 4], hex[*p & 15]};
            lbuf_put(b, e, sizeof(e));
            len = 1;
        } else if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            lbuf_put(b, e, sizeof(e));
        } else if (*p < 0x20 || *p == 0x7f) {
            char e[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
            lbuf_put(b, e, sizeof(e));
        } else {
            lbuf_put(b, (const char *)p, len);
        }
        p += len;
        n -= len;
    }
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ": the seconds part is formatted once a second
 * per thread. */
static void lbuf_time(struct lbuf *b)
{
    static _Thread_local time_t last_sec = (time_t)-1;
    static _Thread_local char last[24];
    struct timespec now;
    struct tm tm;
    long ms;
    char frac[6];

    clock_gettime(CLOCK_REALTIME, &now);
    if (now.tv_sec != last_sec) {
        gmtime_r(&now.tv_sec, &tm);
        strftime(last, sizeof(last), "%Y-%m-%dT%H:%M:%S", &tm);
        last_sec = now.tv_sec;
    }
    lbuf_puts(b, last);
    ms = now.tv_nsec / 1000000;
    frac[0] = '.';
    frac[1] = (char)('0' + ms / 100);
    frac[2] = (char)('0' + ms / 10 % 10);
    frac[3] = (char)('0' + ms % 10);
    frac[4] = 'Z';
    lbuf_put(b, frac, 5);
}

/* One line: "ts level msg key=value..." or one JSON object. */
static void log_format(struct lbuf *b, enum log_level level, const char *msg,
                       const struct log_field *f, int n)
{
    if (log_fmt == LOG_JSON) {
        lbuf_puts(b, "{\"ts\":\"");
        lbuf_time(b);
        lbuf_puts(b, "\",\"level\":\"");
        lbuf_puts(b, level_names[level]);
        lbuf_puts(b, "\",\"msg\":\"");
        log_escape(b, msg);
        lbuf_putc(b, '"');
        for (int i = 0; i < n; i++) {
            lbuf_puts(b, ",\"");
            lbuf_puts(b, f[i].key);
            lbuf_puts(b, "\":");
            if (f[i].str != NULL) {
                lbuf_putc(b, '"');
                log_escape(b, f[i].str);
                lbuf_putc(b, '"');
            } else {
                lbuf_num(b, f[i].num);
            }
        }
        lbuf_puts(b, "}\n");
        return;
    }
    lbuf_time(b);
    lbuf_putc(b, ' ');
    lbuf_puts(b, level_names[level]);
    /* "%-5s": the level padded to five columns */
    lbuf_put(b, "     ", 5 - strlen(level_names[level]) + 1);
    log_escape(b, msg);
    for (int i = 0; i < n; i++) {
        lbuf_putc(b, ' ');
        lbuf_puts(b, f[i].key);
        if (f[i].str != NULL) {
            lbuf_puts(b, "=\"");
            log_escape(b, f[i].str);
            lbuf_putc(b, '"');
        } else {
            lbuf_putc(b, '=');
            lbuf_num(b, f[i].num);
        }
    }
    lbuf_putc(b, '\n');
}

/* One write(2) of the whole line, retried only when interrupted. */
static void log_write_sync(const char *p, size_t len)
{
    pthread_mutex_lock(&log_lock);
    while (len > 0) {
        ssize_t w = write(STDERR_FILENO, p, len);
        if (w <= 0)
            break;
        p += w;
        len -= (size_t)w;
    }
    pthread_mutex_unlock(&log_lock);
}

static void log_line(enum log_level level, const char *msg, const struct log_field *f, int n)
{
    struct lbuf b;
    struct logq *q = atomic_load_explicit(&log_q, memory_order_acquire);
    int flags = 0;

    lbuf_init(&b);
    log_format(&b, level, msg, f, n);
    if (q == NULL) {
        log_write_sync(b.p, b.len);
    } else {
        /* The main thread (signals, reloads, stop) may wait for room; the
         * event loops and pools never do. Warnings go out without delay. */
        if (pthread_equal(pthread_self(), log_main_thread))
            flags |= LOGQ_WAIT | LOGQ_URGENT;
        if (level >= LOG_WARN)
            flags |= LOGQ_URGENT;
        logq_push(q, b.p, b.len, flags);
    }
    lbuf_cleanup(&b);
}

/* The writer thread's report of lines the full queue refused. */
static size_t log_dropped_notice(uint64_t count, char *buf, size_t len)
{
    struct lbuf b;
    char msg[96];
    size_t n = 0;

    snprintf(msg, sizeof(msg), "%llu log lines dropped: stderr did not keep up",
             (unsigned long long)count);
    lbuf_init(&b);
    log_format(&b, LOG_WARN, msg, NULL, 0);
    if (b.len <= len) {
        memcpy(buf, b.p, b.len);
        n = b.len;
    }
    lbuf_cleanup(&b);
    return n;
}

static void log_atexit(void)
{
    log_async_stop();
}

void log_async_start(void)
{
    static bool registered;

    if (atomic_load(&log_q) != NULL)
        return;
    log_main_thread = pthread_self();
    atomic_store(&log_q, logq_new(STDERR_FILENO, LOG_RING_BYTES, LOG_BATCH_US, log_dropped_notice));
    if (!registered) {
        registered = true;
        atexit(log_atexit);
    }
}

void log_async_stop(void)
{
    /* Every other thread has stopped logging by now (joined). */
    logq_free(atomic_exchange(&log_q, NULL));
}

void log_flush_fatal(void)
{
    logq_flush_fatal(atomic_load(&log_q));
}

void log_abort(void)
{
    log_flush_fatal();
    abort();
}

bool log_enabled(enum log_level level)
{
    return level >= log_min;
}

void log_fields(enum log_level level, const char *msg, const struct log_field *f, int n)
{
    if (level >= log_min)
        log_line(level, msg, f, n);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    if (level < log_min)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    log_line(level, buf, NULL, 0);
}

void log_openssl(const char *fmt, ...)
{
    char buf[2048];
    size_t off;
    unsigned long e;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    off = strlen(buf);
    while ((e = ERR_get_error()) != 0 && off + 4 < sizeof(buf)) {
        buf[off++] = ':';
        buf[off++] = ' ';
        ERR_error_string_n(e, buf + off, sizeof(buf) - off);
        off += strlen(buf + off);
    }
    ERR_clear_error();
    log_line(LOG_ERROR, buf, NULL, 0);
}
