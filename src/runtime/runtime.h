/* The running server below its transports: the store, the EST services that
 * outlive a config (rate limiter, refusal table), the work pool, and the
 * current config generation. Transports (http/, coap/) attach to one runtime
 * and take a reference to the generation for each request. docs/architecture.md. */
#ifndef KP_RUNTIME_H
#define KP_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/err.h"

struct admin_server;
struct est_server;
struct runtime;
struct rt_gen;
struct work_pool;

/* Pool threads per event loop thread: they mostly wait on the store, and the
 * more enrollments wait together, the more one commit carries. */
#define RUNTIME_POOL_THREADS_PER_LOOP 8
/* Transports that may attach a part of their own to each generation. */
#define RUNTIME_PARTS_MAX 4

/* Open cfg's store and build the first generation on it. Takes cfg, also on
 * failure. *errmsg (caller frees) says why it failed. */
enum kp_err runtime_new(struct kp_config *cfg, struct runtime **out, char **errmsg);

/* Free the current generation, the services (writing open refusal counts),
 * the pool and the store. Every transport must have stopped and released
 * its generations. Accepts NULL. */
void runtime_free(struct runtime *rt);

/* Event loop threads the transports run: server.threads, or one per CPU,
 * as read at start (a reload does not change it). */
size_t runtime_threads(const struct runtime *rt);

/* The pool for work that may block (store, signing), shared by transports:
 * RUNTIME_POOL_THREADS_PER_LOOP per event loop thread. */
struct work_pool *runtime_pool(struct runtime *rt);

/* A request id, unique across every transport of rt (access log "req"). */
uint64_t runtime_next_id(struct runtime *rt);

/* The current generation with a reference the caller gives back with
 * runtime_release (from any thread). The last release frees it. */
struct rt_gen *runtime_acquire(struct runtime *rt);
void runtime_release(struct runtime *rt, struct rt_gen *g);

/* SIGHUP: read the config file again, build a generation from it (with every
 * transport's part) and make it current; requests already running finish on
 * the old one. On failure the old one stays and *errmsg (caller frees) says
 * why. Settings that only a restart changes are logged at warn. One thread
 * at a time. */
enum kp_err runtime_reload(struct runtime *rt, char **errmsg);

/* What a generation holds (borrowed, alive while the reference is). */
const struct kp_config *rt_gen_config(const struct rt_gen *g);
struct est_server *rt_gen_est(const struct rt_gen *g);
struct admin_server *rt_gen_admin(const struct rt_gen *g);
/* Increases with every reload: tells a transport its cached copy is stale. */
unsigned rt_gen_serial(const struct rt_gen *g);

/* A transport's own per-generation state (TLS context, limits, ...). build
 * makes it from g (reload is false for the generation current when the part
 * is added); a failure abandons the reload. free releases it, when the
 * generation goes, on whichever thread lets go last, possibly after the
 * transport itself is gone, so it must not need arg. */
struct rt_part_ops {
    enum kp_err (*build)(void *arg, const struct rt_gen *g, bool reload, void **part,
                         char **errmsg);
    void (*free)(void *part);
};

/* Register a transport's part and build it for the current generation. *slot
 * names it for rt_gen_part. Call before the transport serves. */
enum kp_err runtime_part_add(struct runtime *rt, const struct rt_part_ops *ops, void *arg,
                             int *slot, char **errmsg);
/* No more parts for later generations (existing ones keep theirs). */
void runtime_part_remove(struct runtime *rt, int slot);
/* The part the transport built for g. */
void *rt_gen_part(const struct rt_gen *g, int slot);

#endif
