/* The operator's side of a running kipuka, transport-neutral like est/:
 * the JSON admin API under /admin, Prometheus metrics at /metrics and the
 * CRLs at CRL_PATH/LABEL.crl. Answers with an est_response so the HTTP
 * transport writes it like any other. */
#ifndef KP_ADMIN_H
#define KP_ADMIN_H

#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"
#include "est/est.h"

struct admin_request {
    const char *method; /* "GET", "POST", "DELETE", ... */
    const char *path;   /* percent-decoded, without the query */
    const char *query;  /* raw query string, NULL when none */
    const unsigned char *body;
    size_t body_len;
    const char *authorization;
    const char *accept;          /* Accept header, NULL when absent: error style of the CRLs */
    X509 *peer_cert;             /* NULL when none */
    STACK_OF(X509) * peer_chain; /* as sent by the client, may be NULL */
    long peer_verify;            /* X509_V_OK when peer_cert chains to admin.client_ca */
    const char *peer_addr;
};

struct admin_server;

/* The admin side of est (which it reads: store, CAs, OTP key). cfg and est
 * are borrowed and must outlive the result. */
struct admin_server *admin_server_new(const struct kp_config *cfg, struct est_server *est);
void admin_server_free(struct admin_server *a);

/* Whether path is the admin API's, /metrics or a CRL: the transport hands
 * those to admin_handle instead of EST. */
bool admin_owns(const struct admin_server *a, const char *path);

/* Answer one request. Blocks on the store: call off the event loop. */
void admin_handle(struct admin_server *a, const struct admin_request *req,
                  struct est_response *resp);

#endif
