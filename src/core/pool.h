/* A fixed set of threads that run blocking work (CSR checks, signing, the
 * store) off the event loops, so a slow database or a batch commit stalls
 * only the requests that need them. */
#ifndef KP_CORE_POOL_H
#define KP_CORE_POOL_H

#include <stddef.h>

struct work_pool;

/* One unit of work: run(arg) on a pool thread. */
typedef void (*pool_fn)(void *arg);

/* Start nthreads threads (at least 1). Aborts on failure to create them. */
struct work_pool *pool_new(size_t nthreads);

/* Queue fn(arg); runs in submission order as threads free up. */
void pool_submit(struct work_pool *p, pool_fn fn, void *arg);

/* Run what is queued, then join the threads and free. Accepts NULL. */
void pool_free(struct work_pool *p);

#endif
