/* The EST-coaps transport (RFC 9148): one thread running a libcoap context
 * with a DTLS 1.2 endpoint, handing POSTs to the work pool. Only src/coap/
 * includes libcoap; this header does not. docs/coap.md */
#ifndef KP_COAP_SERVER_H
#define KP_COAP_SERVER_H

#include "core/config.h"
#include "core/err.h"

struct est_server;
struct work_pool;
struct coap_server;

/* Bind cfg->coap_listen (or cfg->listen):cfg->coap_port over DTLS with the
 * [tls] certificate and key, start the thread and print "kipuka: listening
 * on coaps://HOST:PORT/" to stdout. pool (borrowed) runs the POSTs and must
 * outlive the server. On success the server owns est; on failure the caller
 * keeps it and *errmsg (caller frees) says why. */
enum kp_err coap_server_start(const struct kp_config *cfg, struct est_server *est,
                              struct work_pool *pool, struct coap_server **out, char **errmsg);

/* The UDP port bound (useful when cfg->coap_port is 0). */
int coap_server_port(const struct coap_server *cs);

/* SIGHUP: requests from now on use est and cfg's limits; those running keep
 * the old core, freed once the last lets go. Takes ownership of est. The
 * listen address, port, DTLS credentials and session limits need a restart. */
void coap_server_reload(struct coap_server *cs, const struct kp_config *cfg,
                        struct est_server *est);

/* Stop taking requests, answer those on the pool, stop the thread.
 * Idempotent. */
void coap_server_stop(struct coap_server *cs);

/* Stop if running and free everything, the current est_server too.
 * Accepts NULL. */
void coap_server_free(struct coap_server *cs);

#endif
