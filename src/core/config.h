/* kipuka.toml: the TOML subset libinih reads ([section], [label.NAME],
 * key = "string" | integer | true/false). One table row per key in config.c
 * gives its type, bounds and default; docs are in kipuka.toml.example. */
#ifndef KP_CONFIG_H
#define KP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

/* Public key types a label may accept (bit positions in label_cfg.key_types). */
enum key_type { KEY_EC_P256, KEY_EC_P384, KEY_RSA_2048, KEY_RSA_3072, KEY_RSA_4096, KEY__MAX };

/* Extended key usages a profile may put in certificates (bit positions). */
enum eku { EKU_CLIENT_AUTH, EKU_SERVER_AUTH, EKU_CODE_SIGNING, EKU_EMAIL_PROTECTION, EKU__MAX };

/* How a label treats the TLS channel binding in the CSR challengePassword
 * (RFC 7030 3.5, RFC 9266): checked when present, or required. */
enum cb_policy { CB_OPTIONAL, CB_REQUIRED };

/* One CA + certificate profile, reached at /.well-known/est/{name}/. */
struct label_cfg {
    char *name;
    char *ca_cert;          /* issuing CA certificate (PEM) */
    char *ca_chain;         /* further chain up to the root (PEM, may be empty) */
    char *ca_key;           /* issuing CA private key (PEM) */
    unsigned key_types;     /* bitmask of 1u << enum key_type */
    long max_validity_days; /* further capped by the CA/B BR schedule */
    unsigned ekus;          /* bitmask of 1u << enum eku */
    bool allow_otp;
    char *otp_subject; /* "entity": an OTP certifies only its entity's names; "any" */
    bool allow_psk;    /* DTLS pre-shared keys of coap.psk_file may enroll here */
    bool allow_mtls;
    enum cb_policy channel_binding;
    bool mtls_subject_match;    /* mTLS simpleenroll: CSR subject and SANs == client cert's */
    bool mtls_accept_external;  /* certificates of tls.client_ca kipuka did not issue */
    bool reenroll_allow_change; /* simplereenroll may change subject/SAN */
    long max_sans;
    char *csrattrs_extra;        /* extra OIDs advertised by /csrattrs, comma separated */
    char *approval;              /* "auto", or "manual": requests wait for an operator (202) */
    long approval_ttl;           /* seconds a pending request lives before it counts as new */
    char *serverkeygen_kek_file; /* key id -> AES key for DecryptKeyIdentifier ("": none) */
    bool serverkeygen_archive;   /* keep generated keys, encrypted, with their certificate */
    char *serverkeygen_archive_key_file; /* key id -> AES key; the first one archives */
};

struct kp_config {
    char *path; /* the file read */
    char *dir;  /* its directory: relative paths are resolved against it */

    char *listen;
    long port;
    long threads; /* 0: one per core */
    long max_body_bytes;
    long max_header_bytes;
    long max_url_bytes;    /* request-target length before 414 */
    long max_header_count; /* header fields per request before 431 */
    long read_timeout;     /* seconds to receive a whole request */
    long idle_timeout;     /* seconds a keep-alive connection may sit idle */
    long max_connections;
    long auth_fail_limit;      /* failed authentications per entity before 429; 0: none */
    long auth_fail_limit_addr; /* the same per client address */
    long auth_fail_window;     /* seconds they are counted over, and the block lasts */

    char *tls_cert;
    char *tls_key;
    char *tls_client_ca; /* trust anchors for client certificates */
    char *tls_min_version;
    char *tls_max_version;
    bool tls_allow_cbc; /* TLS 1.2 ECDHE AES-CBC suites for old clients */

    char *est_base_path;
    long est_retry_after;
    bool est_fullcmc;
    bool est_serverkeygen; /* offer /serverkeygen (RFC 7030 4.4) */

    char *store_url;
    long store_pool_size; /* database connections per process (PostgreSQL) */

    char *coap_psk_file; /* DTLS PSK credentials (docs/coap.md), "": none */

    char *otp_key_file; /* HMAC key under which OTPs are hashed */
    long otp_default_ttl;
    long otp_default_uses;

    char *log_level;
    char *log_format;

    char *admin_token_sha256;    /* comma-separated SHA-256 hex of bearer tokens */
    char *admin_client_subjects; /* ";"-separated subjects of admin client certificates */
    bool metrics_require_auth;   /* /metrics needs admin credentials */
    char *crl_path;              /* CRLs at PATH/LABEL.crl */
    long crl_next_update;        /* seconds from thisUpdate to nextUpdate */
    long crl_refresh;            /* seconds a built CRL is served before rebuilding */

    /* EST-coaps (RFC 9148) over DTLS 1.2: docs/coap.md */
    bool coap_enabled;
    char *coap_listen; /* "": as server.listen */
    long coap_port;
    long coap_max_sessions;    /* DTLS sessions kept at once */
    long coap_session_timeout; /* seconds an idle DTLS session lives */

    /* Trust anchors of admin client certificates, and whether they may be
     * (or have issued) a label's CA: docs/authorization.md */
    char *admin_client_ca;
    bool admin_client_ca_may_issue;

    struct label_cfg *labels;
    size_t nlabels;
};

/* Read and validate a config file. On error, *errmsg (caller frees) says
 * "FILE:LINE: reason". Relative paths in the result are made absolute. */
enum kp_err config_load(const char *path, struct kp_config **out, char **errmsg);
void config_free(struct kp_config *cfg);

/* The label with this name, or NULL. */
const struct label_cfg *config_label(const struct kp_config *cfg, const char *name);

/* "24h", "30m", "7d", "90s" or plain seconds; -1 when malformed. */
long config_parse_duration(const char *s);

/* "ec:P-256" etc. to enum key_type; -1 when unknown. */
int config_key_type_parse(const char *s);
const char *config_key_type_name(enum key_type t);
/* "clientAuth", "serverAuth", ... as the eku key spells them. */
const char *config_eku_name(enum eku e);

#endif
