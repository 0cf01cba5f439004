/* Reference-counted config generations over long-lived services. A
 * generation owns its config and everything built from it (EST core, admin
 * side, each transport's part); the services, store and pool belong to the
 * runtime and outlive every reload. */
#include "runtime/runtime.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/admin.h"
#include "core/log.h"
#include "core/pool.h"
#include "core/xalloc.h"
#include "est/est.h"
#include "store/store.h"

#define RUNTIME_THREADS_MAX 256

struct rt_part {
    void *p;
    void (*free)(void *part);
};

struct rt_gen {
    unsigned refs; /* under runtime.lock: one for being current, one per user */
    unsigned serial;
    struct kp_config *cfg;
    struct est_server *est;     /* borrows cfg */
    struct admin_server *admin; /* borrows cfg and est */
    struct rt_part parts[RUNTIME_PARTS_MAX];
};

struct rt_slot {
    bool used;
    struct rt_part_ops ops;
    void *arg;
};

struct runtime {
    pthread_mutex_t lock;
    struct rt_gen *cur; /* guarded by lock */
    unsigned serial;    /* guarded by lock */
    char *path;         /* the config file SIGHUP reads again */
    struct store *store;
    struct est_services *svc;
    struct work_pool *pool;
    size_t threads;
    atomic_uint_fast64_t next_id; /* request ids, shared by the transports */
    /* What only a restart changes, as started: reloads warn when it differs. */
    char *store_url;
    long store_pool_size;
    long auth_fail_window;
    /* Touched by runtime_part_add/remove and runtime_reload: one thread. */
    struct rt_slot slots[RUNTIME_PARTS_MAX];
};

static void gen_free(struct rt_gen *g)
{
    if (g == NULL)
        return;
    /* Transports first: they may borrow from the EST core and the config. */
    for (size_t i = 0; i < RUNTIME_PARTS_MAX; i++)
        if (g->parts[i].free != NULL)
            g->parts[i].free(g->parts[i].p);
    admin_server_free(g->admin);
    est_server_free(g->est);
    config_free(g->cfg);
    free(g);
}

/* A generation from cfg (taken, also on failure) with every registered part. */
static enum kp_err gen_new(struct runtime *rt, struct kp_config *cfg, bool reload,
                           struct rt_gen **out, char **errmsg)
{
    struct rt_gen *g = xcalloc(1, sizeof(*g));
    enum kp_err rc;

    g->cfg = cfg;
    g->refs = 1;
    rc = est_server_new(cfg, rt->svc, &g->est, errmsg);
    if (rc != KP_OK)
        goto out;
    g->admin = admin_server_new(cfg, g->est);
    for (size_t i = 0; i < RUNTIME_PARTS_MAX; i++) {
        struct rt_slot *s = &rt->slots[i];
        if (!s->used)
            continue;
        rc = s->ops.build(s->arg, g, reload, &g->parts[i].p, errmsg);
        if (rc != KP_OK)
            goto out;
        g->parts[i].free = s->ops.free;
    }
    *out = g;
    g = NULL; /* steal */
    rc = KP_OK;
out:
    gen_free(g);
    return rc;
}

static size_t runtime_thread_count(long configured)
{
    long n = configured;

    if (n <= 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n <= 0)
        n = 1;
    return (size_t)(n > RUNTIME_THREADS_MAX ? RUNTIME_THREADS_MAX : n);
}

static const char *str_or_empty(const char *s)
{
    return s != NULL ? s : "";
}

enum kp_err runtime_new(struct kp_config *cfg, struct runtime **out, char **errmsg)
{
    struct runtime *rt = xcalloc(1, sizeof(*rt));
    struct store_opts opts = {.pool_size = cfg->store_pool_size};
    enum kp_err rc;

    pthread_mutex_init(&rt->lock, NULL);
    rt->path = xstrdup(cfg->path);
    rt->store_url = xstrdup(str_or_empty(cfg->store_url));
    rt->store_pool_size = cfg->store_pool_size;
    rt->auth_fail_window = cfg->auth_fail_window;
    rt->threads = runtime_thread_count(cfg->threads);
    rc = store_open_opts(cfg->store_url, &opts, &rt->store);
    if (rc != KP_OK) {
        char *shown = store_url_shown(cfg->store_url); /* never show a password */
        *errmsg = xasprintf("cannot open the store %s", shown);
        free(shown);
        config_free(cfg);
        goto out;
    }
    rt->svc = est_services_new(rt->store, cfg->auth_fail_window);
    rc = gen_new(rt, cfg, false, &rt->cur, errmsg);
    if (rc != KP_OK)
        goto out;
    rt->cur->serial = rt->serial = 1;
    rt->pool = pool_new(rt->threads * RUNTIME_POOL_THREADS_PER_LOOP);
    *out = rt;
    rt = NULL; /* steal */
out:
    runtime_free(rt);
    return rc;
}

void runtime_free(struct runtime *rt)
{
    if (rt == NULL)
        return;
    pool_free(rt->pool); /* runs what is still queued, which may hold a generation */
    runtime_release(rt, rt->cur);
    est_services_free(rt->svc); /* writes the refusal counts still open */
    store_close(rt->store);
    pthread_mutex_destroy(&rt->lock);
    free(rt->path);
    free(rt->store_url);
    free(rt);
}

size_t runtime_threads(const struct runtime *rt)
{
    return rt->threads;
}

struct work_pool *runtime_pool(struct runtime *rt)
{
    return rt->pool;
}

uint64_t runtime_next_id(struct runtime *rt)
{
    return (uint64_t)atomic_fetch_add(&rt->next_id, 1) + 1;
}

struct rt_gen *runtime_acquire(struct runtime *rt)
{
    struct rt_gen *g;

    pthread_mutex_lock(&rt->lock);
    g = rt->cur;
    g->refs++;
    pthread_mutex_unlock(&rt->lock);
    return g;
}

void runtime_release(struct runtime *rt, struct rt_gen *g)
{
    bool last;

    if (g == NULL)
        return;
    pthread_mutex_lock(&rt->lock);
    last = --g->refs == 0;
    pthread_mutex_unlock(&rt->lock);
    /* Outside the lock: freeing CAs and TLS contexts takes a while. */
    if (last)
        gen_free(g);
}

/* The services and the store were made from the first config: say so when
 * the new one asks for something else. */
static void runtime_warn_restart(const struct runtime *rt, const struct kp_config *cfg)
{
    if (strcmp(rt->store_url, str_or_empty(cfg->store_url)) != 0 ||
        rt->store_pool_size != cfg->store_pool_size)
        log_warn("reload: store.url and store.pool_size change only on restart");
    if (rt->auth_fail_window != cfg->auth_fail_window)
        log_warn("reload: auth_fail_window changes only on restart (the failure counts "
                 "are kept across reloads)");
}

enum kp_err runtime_reload(struct runtime *rt, char **errmsg)
{
    struct kp_config *cfg = NULL;
    struct rt_gen *g = NULL, *old;
    enum kp_err rc;

    rc = config_load(rt->path, &cfg, errmsg);
    if (rc != KP_OK)
        return rc;
    rc = gen_new(rt, cfg, true, &g, errmsg);
    if (rc != KP_OK)
        return rc;
    runtime_warn_restart(rt, g->cfg);
    pthread_mutex_lock(&rt->lock);
    g->serial = ++rt->serial;
    old = rt->cur;
    rt->cur = g;
    pthread_mutex_unlock(&rt->lock);
    /* Requests still running keep the old generation until they finish. */
    runtime_release(rt, old);
    return KP_OK;
}

const struct kp_config *rt_gen_config(const struct rt_gen *g)
{
    return g->cfg;
}

struct est_server *rt_gen_est(const struct rt_gen *g)
{
    return g->est;
}

struct admin_server *rt_gen_admin(const struct rt_gen *g)
{
    return g->admin;
}

unsigned rt_gen_serial(const struct rt_gen *g)
{
    return g->serial;
}

enum kp_err runtime_part_add(struct runtime *rt, const struct rt_part_ops *ops, void *arg,
                             int *slot, char **errmsg)
{
    struct rt_gen *g;
    enum kp_err rc;
    void *part = NULL;
    int i;

    for (i = 0; i < RUNTIME_PARTS_MAX && rt->slots[i].used; i++)
        ;
    if (i == RUNTIME_PARTS_MAX) {
        *errmsg = xasprintf("runtime: more than %d transports", RUNTIME_PARTS_MAX);
        return KP_ERR_INTERNAL;
    }
    g = runtime_acquire(rt);
    rc = ops->build(arg, g, false, &part, errmsg);
    if (rc == KP_OK) {
        /* The transport reads its slot only after this returns. */
        g->parts[i].p = part;
        g->parts[i].free = ops->free;
        rt->slots[i].used = true;
        rt->slots[i].ops = *ops;
        rt->slots[i].arg = arg;
        *slot = i;
    }
    runtime_release(rt, g);
    return rc;
}

void runtime_part_remove(struct runtime *rt, int slot)
{
    if (slot >= 0 && slot < RUNTIME_PARTS_MAX)
        memset(&rt->slots[slot], 0, sizeof(rt->slots[slot]));
}

void *rt_gen_part(const struct rt_gen *g, int slot)
{
    return g->parts[slot].p;
}
