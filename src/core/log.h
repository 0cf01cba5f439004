/* Leveled logging to stderr, text or one JSON object per line.
 * Never pass secrets (OTPs, keys, tokens) to these functions. */
#ifndef KP_LOG_H
#define KP_LOG_H

#include <stdbool.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_TEXT, LOG_JSON };

void log_setup(enum log_level level, enum log_format format);
/* Parse "debug|info|warn|error"; returns -1 when unknown. */
int log_level_parse(const char *s);
int log_format_parse(const char *s);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Like log_msg(LOG_ERROR), appending and clearing the OpenSSL error queue. */
void log_openssl(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One structured event: in JSON each field is its own member (numbers
 * unquoted), in text "msg key=value ..." with string values quoted. Messages
 * and string values are escaped alike in both formats (quotes, backslashes,
 * control characters, bytes outside UTF-8 as \xNN): one event, one line. */
struct log_field {
    const char *key;
    const char *str; /* NULL: use num */
    double num;
};
/* While serving: lines go to a queue that one thread writes to stderr in
 * batches, so no caller waits for stderr (docs/logging.md). Lines from the
 * calling thread may wait for room in the queue; other threads' lines are
 * dropped and counted when it is full. Stop writes every queued line and
 * goes back to synchronous writes (also run at exit). */
void log_async_start(void);
void log_async_stop(void);
/* Writes what is still queued, from this thread, now: the fatal paths
 * (out of memory, broken invariants) before abort(). log_abort does both. */
void log_flush_fatal(void);
_Noreturn void log_abort(void);

/* Whether events of this level are written (skip building them otherwise). */
bool log_enabled(enum log_level level);
void log_fields(enum log_level level, const char *msg, const struct log_field *f, int n);

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
