/* Failed-authentication limits per client address and per entity id.
 * Fixed memory: a direct-mapped table, so hostile key churn cannot grow it. */
#ifndef KP_RATELIMIT_H
#define KP_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct ratelimit;

/* Failures are counted over window seconds; reaching a key's limit blocks it
 * for window seconds. */
struct ratelimit *ratelimit_new(long window);
void ratelimit_free(struct ratelimit *rl);

/* Seconds the key stays blocked, 0 when it may try. */
long ratelimit_blocked(struct ratelimit *rl, const char *key, time_t now);
/* Count one failure for key, blocking it at max_failures (0: no limit). */
void ratelimit_fail(struct ratelimit *rl, const char *key, long max_failures, time_t now);

/* FNV-1a over fields (NULL counts as ""), separated, from seed: the slot
 * hash of fixed tables keyed by client-chosen strings; a random seed keeps
 * clients from aiming many keys at one slot. Never 0 (0 marks a free slot). */
uint64_t ratelimit_hash(uint64_t seed, const char *const *fields, size_t n);

#endif
