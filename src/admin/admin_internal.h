/* Shared by the admin API's files; not for other layers. */
#ifndef KP_ADMIN_INTERNAL_H
#define KP_ADMIN_INTERNAL_H

#include <jansson.h>
#include <pthread.h>

#include "admin/admin.h"
#include "store/store.h"

/* A CA's CRL as last built (docs/crl.md). */
struct crl_cached {
    unsigned char *der; /* OPENSSL_free */
    size_t der_len;
    int64_t built_at;
    int64_t number;
};

struct admin_server {
    const struct kp_config *cfg;
    struct est_server *est;
    struct store *store;
    pthread_mutex_t crl_lock;
    /* Labels whose CA certificate is the same (same DER) share one complete
     * CRL: crl_owner[i] is the first label with label i's CA, and only
     * crls[crl_owner[i]] is used. */
    size_t *crl_owner;
    struct crl_cached *crls; /* by label index */
};

/* One request being answered: what the routes read and write. */
struct admin_call {
    struct admin_server *a;
    const struct admin_request *req;
    struct admin_response *resp;
    const char *who; /* authenticated admin, for audit events */
    bool est_style;  /* a public resource (the CRLs): errors as EST answers them */
};

/* Answers. admin_json takes its reference to body. */
void admin_json(struct admin_call *x, int status, json_t *body);
void admin_error(struct admin_call *x, int status, const char *code, const char *message);
/* 503 or 500 for a store failure, with the store's reason. */
void admin_store_error(struct admin_call *x, enum kp_err rc);

/* Query parameter `name` (percent-decoded, caller frees), NULL when absent. */
char *admin_query(const struct admin_call *x, const char *name);
/* False after answering 405 (with Allow) when the method is not m; HEAD
 * passes for "GET" (m is a string literal). */
bool admin_method_is(struct admin_call *x, const char *m);
/* A non-negative integer query parameter (def when absent); false after
 * answering 400. */
bool admin_query_int(struct admin_call *x, const char *name, int64_t def, int64_t max,
                     int64_t *out);
/* The request body as a JSON object, or NULL after answering 400. */
json_t *admin_body(struct admin_call *x);

/* A name in the RFC 2253 form the store keeps subjects in (caller frees). */
char *admin_name(const X509_NAME *name);

/* Routes. rest is the path after "/admin/". */
void admin_route_health(struct admin_call *x, const char *rest);
void admin_route_cas(struct admin_call *x, const char *rest);
void admin_route_certs(struct admin_call *x, const char *rest);
void admin_route_otp(struct admin_call *x, const char *rest);
void admin_route_audit(struct admin_call *x);
void admin_route_requests(struct admin_call *x, const char *rest);
/* "kipuka_pending_requests N" for /metrics (caller frees); NULL on a store error. */
char *admin_pending_gauge(struct admin_server *a);
void admin_serve_crl(struct admin_call *x, const char *file);
void admin_serve_metrics(struct admin_call *x);

/* Drop the cached CRL of a label's CA, after a revocation. */
void admin_crl_invalidate(struct admin_server *a, const char *label);
/* Fill a->crl_owner: labels with the same CA certificate share one CRL. */
void admin_crl_group(struct admin_server *a);

#endif
