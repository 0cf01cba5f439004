/* The operator's side of a running kipuka, transport-neutral like est/:
 * the JSON admin API under /admin, Prometheus metrics at /metrics and the
 * CRLs at CRL_PATH/LABEL.crl. An HTTP-only API: it answers with HTTP
 * statuses in an admin_response, which the HTTP transport writes. */
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
    X509 *peer_cert;             /* NULL when none */
    STACK_OF(X509) * peer_chain; /* as sent by the client, may be NULL */
    long peer_verify;            /* X509_V_OK when peer_cert chains to admin.client_ca */
    const char *peer_addr;
};

/* The answer to one admin request. */
struct admin_response {
    int status;
    const char *content_type; /* static */
    char *body;               /* owned */
    size_t body_len;
    bool body_secret;             /* key material: wiped when released */
    const char *www_authenticate; /* static, NULL: none */
    const char *allow;            /* static: a 405's Allow, NULL: none */
    long retry_after;             /* > 0: Retry-After */
    char auth_subject[EST_SUBJECT_MAX];
    /* The CRLs are public, next to EST: they refuse as EST does, so the
     * transport writes err and detail ("": the table's text) as it writes
     * EST errors, with status. */
    bool est_error;
    enum kp_err err;
    char detail[256];
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
                  struct admin_response *resp);
void admin_response_cleanup(struct admin_response *resp);

#endif
