/* A bounded queue of finished log lines and the one thread that writes them
 * to a descriptor in batches (one writev per batch), so that the threads
 * that log never wait for a slow disk or a stalled pipe. docs/logging.md. */
#ifndef KP_LOGQ_H
#define KP_LOGQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct logq;

/* Formats the line that reports n dropped lines into buf (len bytes);
 * returns its length (0: none). Called by the writer thread only. */
typedef size_t (*logq_notice_fn)(uint64_t n, char *buf, size_t len);

enum {
    LOGQ_URGENT = 1, /* wake the writer now instead of after the batch delay */
    LOGQ_WAIT = 2,   /* wait for room instead of dropping the line */
};

/* Starts the writer thread on fd (not owned) with a ring of capacity bytes;
 * batch_us is how long the writer gathers lines before writing them. */
struct logq *logq_new(int fd, size_t capacity, unsigned batch_us, logq_notice_fn notice);
/* Copies one whole line (with its newline) into the ring. Without
 * LOGQ_WAIT a line that does not fit is counted as dropped; returns false. */
bool logq_push(struct logq *q, const char *line, size_t len, int flags);
/* Writes what is queued and not yet taken by the writer, from the calling
 * thread, now: for the last lines before abort(). */
void logq_flush_fatal(struct logq *q);
/* Lines dropped since the start (the count the notices report). */
uint64_t logq_dropped_total(struct logq *q);
/* Writes every queued line, stops the writer and frees q. Accepts NULL. */
void logq_free(struct logq *q);

#endif
