/* State shared by server.c (context, thread, DTLS) and exchange.c
 * (one request from its first block to its answer). */
#ifndef KP_COAP_INTERNAL_H
#define KP_COAP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "coap/bridge.h"
#include "coap/libcoap.h"
#include "runtime/runtime.h"

/* One POST from its last block to its separate response. Built and
 * answered on the CoAP thread; bridge_handle runs on the pool. */
struct coap_job {
    struct coap_job *next; /* the done queue */
    struct coap_server *cs;
    struct rt_gen *g;        /* a reference, released once the answer is sent */
    coap_session_t *session; /* a reference: the async needs it alive */
    uint8_t token[8];
    size_t token_len;
    struct bridge_request req;
    unsigned char *body;
    X509 *cert;
    STACK_OF(X509) * chain;
    char *psk_identity;
    char peer[80];
    char path[160];
    int method;
    struct timespec t0;
    struct bridge_answer ans;
    bool done;
};

struct coap_server {
    pthread_mutex_t lock;
    struct coap_job *done, *done_tail; /* answered on the pool, lock */
    struct runtime *rt;                /* borrowed: generations, ids */
    struct work_pool *pool;            /* borrowed: the runtime's */
    coap_context_t *ctx;               /* the CoAP thread's, once it runs */
    pthread_t thread;
    bool started;
    int wake; /* eventfd: answers ready, or stop */
    atomic_bool stopping;
    size_t jobs;     /* on the pool; CoAP thread */
    size_t max_jobs; /* past it, POSTs get 5.03 */
    int port;
    /* libcoap keeps these pointers for every handshake: ours, not a
     * generation's config, which a reload frees */
    char *dtls_cert, *dtls_key, *dtls_ca;
    unsigned char psk_default[32]; /* random: nobody knows it */
    unsigned char psk_key[64];     /* the last looked up, for libcoap */
    coap_bin_const_t psk_out;
};

/* Route every method of resource r to the exchange handler, for cs. */
void coap_exchange_attach(coap_resource_t *r, struct coap_server *cs);

/* CoAP thread: a job came back from the pool; fire its separate response. */
void coap_exchange_ready(struct coap_server *cs, struct coap_job *job);

/* CoAP thread: a server session is being freed; drop its upload state. */
void coap_exchange_session_gone(coap_session_t *session);

/* For the pool: run the job, queue it back (server.c wakes the loop). */
void coap_exchange_run(void *job);
void coap_server_queue_done(struct coap_server *cs, struct coap_job *job);

#endif
