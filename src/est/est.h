/* The transport-neutral EST core (RFC 7030, RFC 8951). A transport turns its
 * input into an est_request, calls est_handle and writes the est_response. */
#ifndef KP_EST_H
#define KP_EST_H

#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/err.h"
#include "store/store.h"

enum est_op {
    EST_OP_CACERTS,
    EST_OP_SIMPLEENROLL,
    EST_OP_SIMPLEREENROLL,
    EST_OP_CSRATTRS,
    EST_OP_SERVERKEYGEN,
    EST_OP_FULLCMC,
    EST_OP__MAX
};

/* EST_HEAD is a GET whose body the transport does not send (RFC 9110 9.3.2). */
enum est_method { EST_GET, EST_HEAD, EST_POST, EST_OTHER };

#define EST_LABEL_MAX 40

/* Everything the core needs to know about one request. All borrowed. */
struct est_request {
    enum est_op op;
    char label[EST_LABEL_MAX + 1]; /* "" for the default label */
    enum est_method method;
    const char *content_type;  /* NULL when absent */
    const char *accept;        /* NULL when absent */
    const char *authorization; /* raw Authorization header, NULL when absent */
    const unsigned char *body;
    size_t body_len;
    X509 *peer_cert;                      /* client certificate, NULL when none */
    STACK_OF(X509) * peer_chain;          /* as sent by the client, may be NULL */
    long peer_verify;                     /* X509_V_OK when peer_cert chains to tls.client_ca */
    const unsigned char *channel_binding; /* tls-unique (1.2) or RFC 9266 exporter (1.3) */
    size_t channel_binding_len;
    const char *peer_addr;
    uint64_t id; /* for logs */
};

#define EST_SUBJECT_MAX 256

/* What the transport sends back. Headers are flags so every transport writes
 * them in its own syntax. */
/* The challenge of every EST 401 (RFC 7030 3.2.3). */
#define EST_BASIC_CHALLENGE "Basic realm=\"est\""

struct est_response {
    int status;
    enum kp_err err;
    const char *content_type;     /* static string */
    bool base64_cte;              /* add Content-Transfer-Encoding: base64 */
    const char *www_authenticate; /* WWW-Authenticate value (static), NULL: none */
    long retry_after;             /* > 0: add Retry-After */
    const char *allow;            /* Allow value (static) of a 405 (RFC 9110 15.5.6), NULL: none */
    char *body;                   /* owned */
    size_t body_len;
    bool body_secret;                   /* body holds key material: wiped when released */
    char content_type_buf[96];          /* content_type may point here (multipart boundary) */
    char auth_subject[EST_SUBJECT_MAX]; /* authenticated identity, for the access log */
};

struct est_server;

/* Parse "/{base}/[label/]op" into req->op and req->label. KP_ERR_NOT_FOUND for
 * anything else (unknown op, wrong prefix, extra segments, bad label chars). */
enum kp_err est_route(const char *base_path, const char *path, struct est_request *req);

/* What outlives one config generation and every est_server shares: the
 * store and the state a reload must not reset (a brute-forcer gets no fresh
 * failure budget, open refusal counts are not flushed). */
struct ratelimit;
struct refusals;
struct est_services {
    struct store *store;             /* borrowed */
    struct ratelimit *auth_failures; /* per client address and per entity */
    struct refusals *refusals;       /* audit rows of unauthenticated refusals, bounded */
};

/* The rate limiter and refusal table on store (borrowed, must outlive the
 * result), both counting over window seconds (auth_fail_window). */
struct est_services *est_services_new(struct store *store, long window);
/* Writes the refusal counts still open, then frees; not the store. NULL is fine. */
void est_services_free(struct est_services *svc);

/* Build the server state from config: load every label's CA, the OTP key.
 * cfg and svc (and what it points to) are borrowed and must outlive the server. */
enum kp_err est_server_new(const struct kp_config *cfg, const struct est_services *svc,
                           struct est_server **out, char **errmsg);
void est_server_free(struct est_server *srv);

/* Answer one routed request. Thread-safe. resp is filled; release it with
 * est_response_cleanup. */
void est_handle(struct est_server *srv, const struct est_request *req, struct est_response *resp);

/* Fill resp with an error answer: text/plain, or JSON when accept asks for it. */
void est_response_error(struct est_response *resp, enum kp_err err, const char *accept,
                        const char *detail);
void est_response_cleanup(struct est_response *resp);

const char *est_op_name(enum est_op op);

/* What the admin API reads of a running EST core: its store, its OTP key
 * and each label with its CA (borrowed, alive as long as srv). */
struct ca;
struct store *est_server_store(const struct est_server *srv);
const unsigned char *est_server_otp_key(const struct est_server *srv);
size_t est_server_label_count(const struct est_server *srv);
const char *est_server_label_name(const struct est_server *srv, size_t i);
struct ca *est_server_label_ca(const struct est_server *srv, size_t i);
/* Index of the label, or -1. */
long est_server_label_index(const struct est_server *srv, const char *name);

/* Client certificate trust anchors, loaded and checked with the server
 * (borrowed; NULL when the key is empty): tls.client_ca for EST,
 * admin.client_ca for the admin API. A transport sets est_request and
 * admin_request peer_verify with trust_anchors_verify against these. */
struct trust_anchors;
const struct trust_anchors *est_server_client_anchors(const struct est_server *srv);
const struct trust_anchors *est_server_admin_anchors(const struct est_server *srv);

/* The store's row (caller frees) for a certificate kipuka issued. Found by
 * serial, and only ours when the stored certificate is the same DER, so
 * issuer and serial both match; KP_ERR_NOT_FOUND for any other certificate.
 * Every certificate-based authentication asks this for revocation and label
 * (docs/authorization.md). */
enum kp_err est_issued_cert_find(struct est_server *srv, X509 *cert, struct store_cert **out);

#endif
