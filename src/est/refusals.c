#include "est/refusals.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/xalloc.h"
#include "est/ratelimit.h"

#define RF_SLOTS 1024

/* One source, label, operation, outcome and reason in its window. */
struct rf_slot {
    uint64_t key; /* keyed hash of all of the below; 0 = empty */
    time_t start; /* the window began with the row written in full */
    long count;   /* refusals counted since, not yet written */
    char addr[64];
    char label[48];
    char event[32];
    char outcome[32];
    char detail[REFUSAL_DETAIL_MAX + 1];
};

struct refusals {
    struct store *store; /* borrowed */
    long window;
    uint64_t salt;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t flusher;
    bool flusher_started, stopping;
    struct rf_slot slots[RF_SLOTS];
};

struct refusals *refusals_new(struct store *store, long window)
{
    struct refusals *r = xcalloc(1, sizeof(*r));

    r->store = store;
    r->window = window > 0 ? window : 1;
    arc4random_buf(&r->salt, sizeof(r->salt));
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->wake, NULL);
    return r;
}

/* Copy at most max bytes of s, never ending inside a UTF-8 sequence. */
static void rf_copy(char *dst, size_t max, const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    }
    if (n > 0)
        memcpy(dst, s, n);
    dst[n] = '\0';
}

/* The summary row of a slot's counted refusals. */
static void rf_write_summary(struct refusals *r, const struct rf_slot *s, time_t now)
{
    char detail[REFUSAL_DETAIL_MAX + 128];
    long span = (long)(now - s->start);
    struct store_audit ev = {
        .event = s->event,
        .outcome = s->outcome,
        .label = s->label[0] != '\0' ? s->label : NULL,
        .subject = NULL,
        .peer = s->addr,
        .detail = detail,
    };

    if (span < 1)
        span = 1;
    if (span > r->window)
        span = r->window;
    snprintf(detail, sizeof(detail), "%ld more refusals from %s in the last %ld s: %s", s->count,
             s->addr, span, s->detail);
    if (store_audit_add(r->store, &ev) != KP_OK)
        log_error("audit: cannot write the summary of %ld refusals from %s", s->count, s->addr);
}

/* Take the slots whose window closed (all of them when all is set) with a
 * count, emptying them; called with the lock held. Caller frees *out. */
static size_t rf_collect(struct refusals *r, time_t now, bool all, struct rf_slot **out)
{
    size_t n = 0, cap = 0;
    struct rf_slot *v = NULL;

    for (size_t i = 0; i < RF_SLOTS; i++) {
        struct rf_slot *s = &r->slots[i];
        if (s->key == 0 || (!all && now - s->start < r->window))
            continue;
        if (s->count > 0) {
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                v = xrealloc(v, cap * sizeof(*v));
            }
            v[n++] = *s;
        }
        memset(s, 0, sizeof(*s));
    }
    *out = v;
    return n;
}

/* Writes the summaries of closed windows about once a second, so a count is
 * on record at most window + 1 s after its first refusal. */
static void *rf_flusher(void *arg)
{
    struct refusals *r = arg;
    struct rf_slot *v;
    struct timespec until;
    size_t n;

    pthread_mutex_lock(&r->lock);
    while (!r->stopping) {
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        pthread_cond_timedwait(&r->wake, &r->lock, &until);
        if (r->stopping)
            break;
        n = rf_collect(r, time(NULL), false, &v);
        if (n == 0)
            continue;
        pthread_mutex_unlock(&r->lock);
        for (size_t i = 0; i < n; i++)
            rf_write_summary(r, &v[i], time(NULL));
        free(v);
        pthread_mutex_lock(&r->lock);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

void refusals_free(struct refusals *r)
{
    struct rf_slot *v;
    size_t n;

    if (r == NULL)
        return;
    pthread_mutex_lock(&r->lock);
    r->stopping = true;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
    if (r->flusher_started)
        pthread_join(r->flusher, NULL);
    /* nothing counted is lost at shutdown or reload */
    n = rf_collect(r, time(NULL), true, &v);
    for (size_t i = 0; i < n; i++)
        rf_write_summary(r, &v[i], time(NULL));
    free(v);
    pthread_cond_destroy(&r->wake);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

void refusals_audit(struct refusals *r, const struct store_audit *ev, const char *addr, time_t now)
{
    const char *fields[] = {addr, ev->label, ev->event, ev->outcome, ev->detail};
    char subject[REFUSAL_SUBJECT_MAX + 1], detail[REFUSAL_DETAIL_MAX + 1];
    struct store_audit row = *ev;
    struct rf_slot evicted = {0}, *s;
    uint64_t h;
    bool write = true;

    rf_copy(subject, REFUSAL_SUBJECT_MAX, ev->subject);
    rf_copy(detail, REFUSAL_DETAIL_MAX, ev->detail);
    row.subject = ev->subject != NULL ? subject : NULL;
    row.detail = ev->detail != NULL ? detail : NULL;
    h = ratelimit_hash(r->salt, fields, sizeof(fields) / sizeof(fields[0]));
    s = &r->slots[h % RF_SLOTS];
    pthread_mutex_lock(&r->lock);
    if (s->key == h && now - s->start < r->window) {
        s->count++;
        write = false;
        if (!r->flusher_started && !r->stopping &&
            pthread_create(&r->flusher, NULL, rf_flusher, r) == 0)
            r->flusher_started = true;
    } else {
        /* a closed window, or another source in the slot: its count goes on
         * record before the slot starts this one's window */
        if (s->key != 0 && s->count > 0)
            evicted = *s;
        memset(s, 0, sizeof(*s));
        s->key = h;
        s->start = now;
        rf_copy(s->addr, sizeof(s->addr) - 1, addr);
        rf_copy(s->label, sizeof(s->label) - 1, ev->label);
        rf_copy(s->event, sizeof(s->event) - 1, ev->event);
        rf_copy(s->outcome, sizeof(s->outcome) - 1, ev->outcome);
        rf_copy(s->detail, sizeof(s->detail) - 1, ev->detail);
    }
    pthread_mutex_unlock(&r->lock);
    if (evicted.count > 0)
        rf_write_summary(r, &evicted, now);
    if (write)
        store_audit_add(r->store, &row);
}
