/* The transport-neutral EST core (RFC 7030, RFC 8951, RFC 9148). A transport
 * turns its input into an est_request, calls est_handle and writes the
 * est_answer in its own syntax (docs/architecture.md). */
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

/* The one table of operations (est/ops.c): every transport routes and
 * answers "method not allowed" from it. */
struct est_op_info {
    enum est_op op;
    const char *name;      /* RFC 7030 3.2.2 path segment: "simpleenroll" */
    const char *coap_name; /* RFC 9148 short name: "sen" */
    const char *coap_rt;   /* RFC 9148 resource type: "ace.est.sen" */
    bool post;             /* true: POST only; false: GET only (HTTP adds HEAD) */
    bool enrolls;          /* issues a certificate: metrics, rate limits */
};
const struct est_op_info *est_op_info(enum est_op op);
/* By RFC 7030 name or by RFC 9148 short name; NULL when none. */
const struct est_op_info *est_op_by_name(const char *name, size_t len);
const struct est_op_info *est_op_by_coap_name(const char *name, size_t len);
const char *est_op_name(enum est_op op);
/* A label path segment (RFC 7030 3.2.2): 1 to EST_LABEL_MAX characters of
 * [A-Za-z0-9._-]. Transports check it before copying into est_request. */
bool est_label_valid(const char *s, size_t len);

/* The method class; a transport maps HEAD to EST_GET and leaves the body out. */
enum est_method { EST_GET, EST_POST, EST_OTHER };

/* Media types EST knows (RFC 7030 3.2.4, RFC 9148 5.1). Each transport maps
 * its own syntax to these: HTTP media type strings, CoAP Content-Formats. */
enum est_media {
    EST_MEDIA_NONE,         /* absent (no Content-Type / no Accept: anything) */
    EST_MEDIA_OTHER,        /* present but none of these */
    EST_MEDIA_PKCS10,       /* application/pkcs10 (CoAP 286) */
    EST_MEDIA_CERTS,        /* application/pkcs7-mime; smime-type=certs-only (281) */
    EST_MEDIA_PKIX_CERT,    /* application/pkix-cert (287), one certificate */
    EST_MEDIA_CSRATTRS,     /* application/csrattrs (285) */
    EST_MEDIA_PKCS8,        /* application/pkcs8 (284) */
    EST_MEDIA_SERVER_KEY,   /* application/pkcs7-mime; smime-type=server-generated-key (280) */
    EST_MEDIA_CMC_REQUEST,  /* application/pkcs7-mime; smime-type=CMC-request (283) */
    EST_MEDIA_CMC_RESPONSE, /* application/pkcs7-mime; smime-type=CMC-response (282) */
    EST_MEDIA_JSON,         /* application/json: error details (HTTP only) */
};

#define EST_LABEL_MAX 40
#define EST_SUBJECT_MAX 256

/* What the client proved at the transport, parsed. Any may be present at
 * once (HTTP Basic over a TLS client certificate); all borrowed. */
struct est_credentials {
    const char *user;         /* password pair (HTTP Basic): NULL when none */
    const char *password;     /* the transport wipes its copy after the call */
    bool password_malformed;  /* credentials were sent but could not be parsed: 401 */
    X509 *cert;               /* client certificate, NULL when none */
    STACK_OF(X509) * chain;   /* as sent by the client, may be NULL */
    long cert_verify;         /* X509_V_OK when cert chains to tls.client_ca */
    const char *psk_identity; /* DTLS PSK identity the handshake accepted, NULL: none */
};

/* Everything the core needs to know about one request. All borrowed. */
struct est_request {
    enum est_op op;
    char label[EST_LABEL_MAX + 1]; /* "" for the default label */
    enum est_method method;
    enum est_media content_type; /* of body */
    enum est_media accept;       /* what the client asked for; NONE: the default */
    const unsigned char *body;   /* DER: the transport removed its encodings */
    size_t body_len;
    const char *body_error; /* the transport could not decode the body: why (400), else NULL */
    struct est_credentials cred;
    const unsigned char *channel_binding; /* tls-unique (1.2) or RFC 9266 exporter (1.3) */
    size_t channel_binding_len;
    const char *transport; /* "https", "coaps": for audit rows and logs */
    const char *peer_addr;
    uint64_t id; /* for logs */
};

enum est_outcome {
    EST_DONE, /* parts hold the answer */
    EST_HELD, /* accepted, waiting for an operator: ask again after retry_after (RFC 7030 4.2.3) */
    EST_FAILED, /* err (and detail) say why */
};

/* One piece of an answer: DER bytes (owned) of one media type. */
struct est_part {
    enum est_media media;
    unsigned char *der;
    size_t len;
    bool secret; /* key material: wiped when released */
};

#define EST_PARTS_MAX 2

struct est_answer {
    enum est_outcome outcome;
    enum kp_err err;  /* KP_OK unless EST_FAILED */
    char detail[256]; /* EST_FAILED, EST_HELD: what the client may be told; "": the table's */
    long retry_after; /* seconds: EST_HELD, and rate-limited or unavailable failures */
    struct est_part parts[EST_PARTS_MAX]; /* serverkeygen: the key first, then the certificate */
    size_t nparts;
    char auth_subject[EST_SUBJECT_MAX]; /* authenticated identity, for the access log */
    const char *auth_method; /* "otp", "mtls", "psk" tried (even when refused), or NULL: metrics */
};

struct est_server;
struct est_services; /* the runtime's long-lived services the core uses */

/* Answer one request. Thread-safe; may block on the store (call it off an
 * event loop for ops that post). Release ans with est_answer_cleanup. */
void est_handle(struct est_server *srv, const struct est_request *req, struct est_answer *ans);
void est_answer_cleanup(struct est_answer *ans);

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

/* Build the server state from config: load every label's CA, the OTP key,
 * the DTLS PSK file (coap.psk_file).
 * cfg and svc (and what it points to) are borrowed and must outlive the server. */
enum kp_err est_server_new(const struct kp_config *cfg, const struct est_services *svc,
                           struct est_server **out, char **errmsg);
void est_server_free(struct est_server *srv);

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

/* The DTLS PSK credentials of coap.psk_file, loaded with the server and
 * alive as long as it (borrowed); NULL when the key is empty. */
struct psk_table;
const struct psk_table *est_server_psk(const struct est_server *srv);

/* The store's row (caller frees) for a certificate kipuka issued. Found by
 * serial, and only ours when the stored certificate is the same DER, so
 * issuer and serial both match; KP_ERR_NOT_FOUND for any other certificate.
 * Every certificate-based authentication asks this for revocation and label
 * (docs/authorization.md). */
enum kp_err est_issued_cert_find(struct est_server *srv, X509 *cert, struct store_cert **out);

#endif
