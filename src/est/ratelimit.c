#include "est/ratelimit.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"

#define RL_SLOTS 8192

struct rl_slot {
    uint64_t key; /* keyed hash of the key string; 0 = empty */
    time_t window_start;
    time_t blocked_until;
    long failures;
};

struct ratelimit {
    long window;
    uint64_t salt; /* so nobody can aim keys at one slot */
    pthread_mutex_t lock;
    struct rl_slot slots[RL_SLOTS];
};

struct ratelimit *ratelimit_new(long window)
{
    struct ratelimit *rl = xcalloc(1, sizeof(*rl));
    rl->window = window;
    arc4random_buf(&rl->salt, sizeof(rl->salt));
    pthread_mutex_init(&rl->lock, NULL);
    return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
    if (rl == NULL)
        return;
    pthread_mutex_destroy(&rl->lock);
    free(rl);
}

uint64_t ratelimit_hash(uint64_t seed, const char *const *fields, size_t n)
{
    uint64_t h = 1469598103934665603ULL ^ seed;

    for (size_t i = 0; i < n; i++) {
        for (const unsigned char *p = (const unsigned char *)(fields[i] ? fields[i] : ""); *p;
             p++) {
            h ^= *p;
            h *= 1099511628211ULL;
        }
        if (i + 1 < n) { /* keeps "a"+"bc" apart from "ab"+"c" */
            h ^= 0x1f;
            h *= 1099511628211ULL;
        }
    }
    return h ? h : 1;
}

static uint64_t rl_hash(const struct ratelimit *rl, const char *key)
{
    return ratelimit_hash(rl->salt, &key, 1);
}

long ratelimit_blocked(struct ratelimit *rl, const char *key, time_t now)
{
    uint64_t h;
    struct rl_slot *s;
    long left = 0;

    if (rl == NULL)
        return 0;
    h = rl_hash(rl, key);
    s = &rl->slots[h % RL_SLOTS];
    pthread_mutex_lock(&rl->lock);
    if (s->key == h && s->blocked_until > now)
        left = (long)(s->blocked_until - now);
    pthread_mutex_unlock(&rl->lock);
    return left;
}

void ratelimit_fail(struct ratelimit *rl, const char *key, long max_failures, time_t now)
{
    uint64_t h;
    struct rl_slot *s;

    if (rl == NULL || max_failures == 0)
        return;
    h = rl_hash(rl, key);
    s = &rl->slots[h % RL_SLOTS];
    pthread_mutex_lock(&rl->lock);
    if (s->key != h) {
        /* a blocked key keeps its slot until its block ends */
        if (s->key != 0 && s->blocked_until > now)
            goto out;
        memset(s, 0, sizeof(*s));
        s->key = h;
        s->window_start = now;
    }
    if (now - s->window_start >= rl->window) {
        s->window_start = now;
        s->failures = 0;
    }
    if (++s->failures >= max_failures)
        s->blocked_until = now + rl->window;
out:
    pthread_mutex_unlock(&rl->lock);
}
