#include "core/logq.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "core/xalloc.h"

#define LOGQ_NOTICE_MAX 256

/* Positions are byte counts since the start, never wrapped: the ring index
 * is pos % cap. tail <= sent <= head: [tail, sent) is being written by the
 * writer, [sent, head) waits for it, the rest is free. */
struct logq {
    pthread_mutex_t lock;
    pthread_cond_t wake;  /* writer: lines arrived, urgent, or stop */
    pthread_cond_t space; /* LOGQ_WAIT producers: room was made */
    pthread_t thread;
    int fd;
    char *ring;
    size_t cap;
    unsigned batch_us;
    logq_notice_fn notice;
    uint64_t head, sent, tail;
    uint64_t dropped, dropped_total;
    unsigned waiters;
    bool idle;      /* writer sleeps until lines arrive */
    bool gathering; /* writer waits out the batch delay */
    bool urgent;
    bool stop;
};

/* Writes all of iov, waiting out EINTR and a non-blocking descriptor;
 * any other error drops the rest (stderr is gone: nobody to tell). */
static void logq_write_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                struct pollfd p = {.fd = fd, .events = POLLOUT};
                (void)poll(&p, 1, -1);
                continue;
            }
            return;
        }
        size_t done = (size_t)w;
        while (n > 0 && done >= iov->iov_len) {
            done -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + done;
            iov->iov_len -= done;
        }
    }
}

/* Writes ring bytes [from, to): one or two pieces around the wrap. */
static void logq_write_range(struct logq *q, uint64_t from, uint64_t to)
{
    struct iovec iov[2];
    size_t start = (size_t)(from % q->cap), len = (size_t)(to - from);
    int n = 1;

    if (len == 0)
        return;
    iov[0].iov_base = q->ring + start;
    iov[0].iov_len = len;
    if (start + len > q->cap) {
        iov[0].iov_len = q->cap - start;
        iov[1].iov_base = q->ring;
        iov[1].iov_len = len - iov[0].iov_len;
        n = 2;
    }
    logq_write_all(q->fd, iov, n);
}

/* Reports the lines dropped so far, once there is room again. Lock held;
 * the write itself happens unlocked. */
static void logq_notice_locked(struct logq *q)
{
    char buf[LOGQ_NOTICE_MAX];
    uint64_t n = q->dropped;
    size_t len;

    if (n == 0 || q->notice == NULL)
        return;
    q->dropped = 0;
    len = q->notice(n, buf, sizeof(buf));
    if (len == 0 || len > sizeof(buf))
        return;
    pthread_mutex_unlock(&q->lock);
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    logq_write_all(q->fd, &iov, 1);
    pthread_mutex_lock(&q->lock);
}

static void logq_deadline(struct timespec *ts, unsigned us)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_nsec += (long)us * 1000;
    while (ts->tv_nsec >= 1000000000L) {
        ts->tv_nsec -= 1000000000L;
        ts->tv_sec++;
    }
}

static void *logq_main(void *arg)
{
    struct logq *q = arg;
    struct timespec until;
    uint64_t from, to;

    pthread_mutex_lock(&q->lock);
    for (;;) {
        while (q->head == q->sent && !q->stop) {
            q->idle = true;
            pthread_cond_wait(&q->wake, &q->lock);
        }
        q->idle = false;
        if (q->head == q->sent)
            break; /* stopping, and all written */
        /* Gather a batch: one write for many lines. Urgent lines end it. */
        if (!q->urgent && !q->stop && q->batch_us > 0) {
            q->gathering = true;
            logq_deadline(&until, q->batch_us);
            while (!q->urgent && !q->stop &&
                   pthread_cond_timedwait(&q->wake, &q->lock, &until) == 0)
                ;
            q->gathering = false;
        }
        q->urgent = false;
        from = q->sent;
        to = q->head;
        q->sent = to;
        pthread_mutex_unlock(&q->lock);
        logq_write_range(q, from, to);
        pthread_mutex_lock(&q->lock);
        q->tail = to;
        if (q->waiters > 0)
            pthread_cond_broadcast(&q->space);
        logq_notice_locked(q);
    }
    logq_notice_locked(q);
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

struct logq *logq_new(int fd, size_t capacity, unsigned batch_us, logq_notice_fn notice)
{
    struct logq *q = xcalloc(1, sizeof(*q));
    pthread_condattr_t ca;
    sigset_t all, old;
    int r;

    q->fd = fd;
    q->cap = capacity;
    q->ring = xmalloc(capacity);
    q->batch_us = batch_us;
    q->notice = notice;
    pthread_mutex_init(&q->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&q->space, NULL);
    /* Signals stay with the threads that wait for them. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    r = pthread_create(&q->thread, NULL, logq_main, q);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0)
        abort(); /* no thread: as out of memory */
    return q;
}

bool logq_push(struct logq *q, const char *line, size_t len, int flags)
{
    size_t start, first;

    pthread_mutex_lock(&q->lock);
    while (len > q->cap - (size_t)(q->head - q->tail)) {
        if (!(flags & LOGQ_WAIT) || len > q->cap || q->stop) {
            q->dropped++;
            q->dropped_total++;
            pthread_mutex_unlock(&q->lock);
            return false;
        }
        q->waiters++;
        pthread_cond_wait(&q->space, &q->lock);
        q->waiters--;
    }
    start = (size_t)(q->head % q->cap);
    first = len < q->cap - start ? len : q->cap - start;
    memcpy(q->ring + start, line, first);
    memcpy(q->ring, line + first, len - first);
    q->head += len;
    if (flags & LOGQ_URGENT)
        q->urgent = true;
    if (q->idle || (q->gathering && (flags & LOGQ_URGENT))) {
        q->idle = false; /* one wake-up is enough */
        pthread_cond_signal(&q->wake);
    }
    pthread_mutex_unlock(&q->lock);
    return true;
}

void logq_flush_fatal(struct logq *q)
{
    uint64_t from;

    if (q == NULL)
        return;
    /* Lock held on purpose: nothing else is queued behind these lines. */
    pthread_mutex_lock(&q->lock);
    from = q->sent;
    q->sent = q->head;
    logq_write_range(q, from, q->head);
    pthread_mutex_unlock(&q->lock);
}

uint64_t logq_dropped_total(struct logq *q)
{
    uint64_t n;

    pthread_mutex_lock(&q->lock);
    n = q->dropped_total;
    pthread_mutex_unlock(&q->lock);
    return n;
}

void logq_free(struct logq *q)
{
    if (q == NULL)
        return;
    pthread_mutex_lock(&q->lock);
    q->stop = true;
    pthread_cond_signal(&q->wake);
    pthread_cond_broadcast(&q->space);
    pthread_mutex_unlock(&q->lock);
    pthread_join(q->thread, NULL);
    pthread_cond_destroy(&q->wake);
    pthread_cond_destroy(&q->space);
    pthread_mutex_destroy(&q->lock);
    free(q->ring);
    free(q);
}
