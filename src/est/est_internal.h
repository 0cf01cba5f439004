/* Shared by the est/ operation files; not part of the core's interface. */
#ifndef KP_EST_INTERNAL_H
#define KP_EST_INTERNAL_H

#include "auth/otp.h"
#include "ca/ca.h"
#include "est/est.h"
#include "est/ratelimit.h"
#include "est/refusals.h"
#include "pki/csr.h"
#include "pki/kek.h"
#include "pki/trust.h"

#define EST_CT_CERTS "application/pkcs7-mime; smime-type=certs-only"
#define EST_CT_CSRATTRS "application/csrattrs"
#define EST_CT_PKCS8 "application/pkcs8"
#define EST_CT_SERVER_KEY "application/pkcs7-mime; smime-type=server-generated-key"

/* One label, ready to serve: its CA and the answers that never change. */
struct est_label {
    const struct label_cfg *cfg; /* borrowed from the config */
    struct ca *ca;
    char *cacerts_b64; /* /cacerts body */
    size_t cacerts_b64_len;
    char *csrattrs_b64; /* /csrattrs body */
    size_t csrattrs_b64_len;
    struct kek_table *kek;     /* serverkeygen_kek_file, NULL when none */
    struct kek_table *archive; /* serverkeygen_archive_key_file when archiving, else NULL */
};

struct est_server {
    const struct kp_config *cfg; /* borrowed */
    struct store *store;         /* borrowed */
    unsigned char otp_key[OTP_KEY_LEN];
    struct est_label *labels;
    size_t nlabels;
    struct ratelimit *auth_failures;      /* borrowed from est_services */
    struct trust_anchors *client_anchors; /* tls.client_ca, NULL when empty */
    struct trust_anchors *admin_anchors;  /* admin.client_ca, NULL when empty */
    STACK_OF(X509_NAME) * ca_subjects;    /* no label issues these: every CA kipuka knows */
    struct refusals *refusals;            /* borrowed from est_services */
};

/* Set a 200 answer with an owned base64 body. */
void est_response_ok(struct est_response *resp, const char *content_type, char *body, size_t len);
/* 1 when the header's media type (before any ';') equals type, ignoring case and spaces. */
int est_media_type_is(const char *header, const char *type);

void est_cacerts(struct est_server *srv, const struct est_label *l, const struct est_request *req,
                 struct est_response *resp);
void est_csrattrs(struct est_server *srv, const struct est_label *l, const struct est_request *req,
                  struct est_response *resp);
/* simpleenroll, simplereenroll (RFC 7030 4.2) and serverkeygen (4.4): one
 * pipeline of authentication, approval, policy, issuance and audit. */
void est_enroll(struct est_server *srv, const struct est_label *l, const struct est_request *req,
                struct est_response *resp);

/* How /serverkeygen protects the key it generates (RFC 7030 4.4.1). */
enum skg_protect { SKG_PLAIN, SKG_KEK, SKG_ASYMMETRIC };

/* What serverkeygen will do for one request, decided before any issuance. */
struct skg_plan {
    enum key_type key_type;
    enum skg_protect protect;
    const unsigned char *kek; /* borrowed from the label's table, SKG_KEK only */
    size_t kek_len;
    const unsigned char *kek_id; /* borrowed from the CSR, SKG_KEK only */
    size_t kek_id_len;
};

/* Choose the key type (the CSR's when the label allows it and it can be
 * generated, else the label's first such type) and the key protection the
 * CSR asks for. KP_ERR_POLICY with *why when it cannot be served. */
enum kp_err skg_plan_make(const struct est_label *l, const struct csr *csr, bool mtls,
                          struct skg_plan *plan, const char **why);
/* With serverkeygen_archive: key as EnvelopedData under the label's first
 * archive key (caller frees with OPENSSL_free). */
enum kp_err skg_archive(const struct est_label *l, EVP_PKEY *key, unsigned char **der, size_t *len);
/* The 200 answer: multipart/mixed with the key part then the certificate
 * part. recip is the client certificate for SKG_ASYMMETRIC. */
enum kp_err skg_respond(const struct skg_plan *plan, EVP_PKEY *key, X509 *cert, X509 *recip,
                        struct est_response *resp);

#endif
