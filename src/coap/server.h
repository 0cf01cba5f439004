/* The EST-coaps transport (RFC 9148): one thread running a libcoap context
 * with a DTLS 1.2 endpoint, handing POSTs to the runtime's work pool. Only
 * src/coap/ includes libcoap; this header does not. docs/coap.md */
#ifndef KP_COAP_SERVER_H
#define KP_COAP_SERVER_H

#include "core/config.h"
#include "core/err.h"
#include "runtime/transport.h"

struct runtime;
struct coap_server;

/* Bind coap.listen (or server.listen):coap.port of rt's current config over
 * DTLS with the [tls] certificate and key, start the thread and print
 * "kipuka: listening on coaps://HOST:PORT/" to stdout. Each request runs on
 * rt's current generation (one reference, released once its answer is
 * sent) and POSTs on runtime_pool(rt); rt must outlive the server. The
 * listen address, port, DTLS certificate and session limits need a
 * restart. On failure *errmsg (caller frees) says why. */
enum kp_err coap_server_start(struct runtime *rt, struct coap_server **out, char **errmsg);

/* The UDP port bound (useful when coap.port is 0). */
int coap_server_port(const struct coap_server *cs);

/* Stop taking requests, answer those on the pool, stop the thread.
 * Idempotent. */
void coap_server_stop(struct coap_server *cs);

/* Stop if running and free. Accepts NULL. */
void coap_server_free(struct coap_server *cs);

/* For `kipuka serve`: starts only when coap.enabled. */
extern const struct transport_ops coap_transport;

#endif
