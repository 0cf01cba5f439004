#include "core/pool.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/xalloc.h"

struct pool_job {
    pool_fn fn;
    void *arg;
    struct pool_job *next;
};

struct work_pool {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct pool_job *head, *tail; /* guarded by lock */
    bool stopping;                /* guarded by lock */
    pthread_t *threads;
    size_t nthreads;
};

static void *pool_main(void *arg)
{
    struct work_pool *p = arg;

    for (;;) {
        struct pool_job *job;

        pthread_mutex_lock(&p->lock);
        while (p->head == NULL && !p->stopping)
            pthread_cond_wait(&p->wake, &p->lock);
        job = p->head;
        if (job != NULL) {
            p->head = job->next;
            if (p->head == NULL)
                p->tail = NULL;
        }
        pthread_mutex_unlock(&p->lock);
        if (job == NULL)
            return NULL; /* stopping and drained */
        job->fn(job->arg);
        free(job);
    }
}

struct work_pool *pool_new(size_t nthreads)
{
    struct work_pool *p = xcalloc(1, sizeof(*p));
    sigset_t all, old;

    p->nthreads = nthreads > 0 ? nthreads : 1;
    p->threads = xcalloc(p->nthreads, sizeof(*p->threads));
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    /* Signals stay with the threads that wait for them. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (size_t i = 0; i < p->nthreads; i++) {
        int r = pthread_create(&p->threads[i], NULL, pool_main, p);
        if (r != 0) {
            log_error("http: pthread_create: %s", strerror(r));
            log_abort();
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return p;
}

void pool_submit(struct work_pool *p, pool_fn fn, void *arg)
{
    struct pool_job *job = xcalloc(1, sizeof(*job));

    job->fn = fn;
    job->arg = arg;
    pthread_mutex_lock(&p->lock);
    if (p->tail != NULL)
        p->tail->next = job;
    else
        p->head = job;
    p->tail = job;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
}

void pool_free(struct work_pool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (size_t i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p->threads);
    free(p);
}
