/* A fixed set of threads that run blocking work (CSR checks, signing, the
 * store) off the event loops, so a slow database or a batch commit stalls
 * only the requests that need them. */
#ifndef KP_HTTP_POOL_H
#define KP_HTTP_POOL_H

#include <stddef.h>

struct http_pool;

/* One unit of work: run(arg) on a pool thread. */
typedef void (*http_pool_fn)(void *arg);

/* Start nthreads threads (at least 1). Aborts on failure to create them. */
struct http_pool *http_pool_new(size_t nthreads);

/* Queue fn(arg); runs in submission order as threads free up. */
void http_pool_submit(struct http_pool *p, http_pool_fn fn, void *arg);

/* Run what is queued, then join the threads and free. Accepts NULL. */
void http_pool_free(struct http_pool *p);

#endif
