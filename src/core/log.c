#include "core/log.h"

#include <openssl/err.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/utf8.h"

static enum log_level log_min = LOG_INFO;
static enum log_format log_fmt = LOG_TEXT;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

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

/* The one escaping of logged text, messages and fields alike, in both
 * formats: the body of a JSON string. Quotes and backslashes get a backslash,
 * control characters (newlines too, so nobody forges a line: CWE-117) and DEL
 * become \u00XX, and a byte outside well-formed UTF-8 becomes \\xNN (the
 * text \xNN once decoded), so a JSON line stays valid for any bytes. */
static void log_escape(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);

    while (n > 0) {
        size_t len = utf8_seq_len(p, n);
        if (len == 0) {
            fprintf(f, "\\\\x%02x", *p);
            len = 1;
        } else if (*p == '"' || *p == '\\') {
            fprintf(f, "\\%c", *p);
        } else if (*p < 0x20 || *p == 0x7f) {
            fprintf(f, "\\u%04x", *p);
        } else {
            fwrite(p, 1, len, f);
        }
        p += len;
        n -= len;
    }
}

/* One line: "ts level msg key=value..." or one JSON object. */
static void log_line(enum log_level level, const char *msg, const struct log_field *f, int n)
{
    char ts[32];
    struct timespec now;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    pthread_mutex_lock(&log_lock);
    if (log_fmt == LOG_JSON) {
        fprintf(stderr, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"msg\":\"", ts,
                now.tv_nsec / 1000000, level_names[level]);
        log_escape(stderr, msg);
        fputc('"', stderr);
        for (int i = 0; i < n; i++) {
            fprintf(stderr, ",\"%s\":", f[i].key);
            if (f[i].str != NULL) {
                fputc('"', stderr);
                log_escape(stderr, f[i].str);
                fputc('"', stderr);
            } else {
                fprintf(stderr, "%.10g", f[i].num);
            }
        }
        fputs("}\n", stderr);
    } else {
        fprintf(stderr, "%s.%03ldZ %-5s ", ts, now.tv_nsec / 1000000, level_names[level]);
        log_escape(stderr, msg);
        for (int i = 0; i < n; i++) {
            if (f[i].str != NULL) {
                fprintf(stderr, " %s=\"", f[i].key);
                log_escape(stderr, f[i].str);
                fputc('"', stderr);
            } else {
                fprintf(stderr, " %s=%.10g", f[i].key, f[i].num);
            }
        }
        fputc('\n', stderr);
    }
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
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
