/* Shared by the est/ operation files; not part of the core's interface. */
#ifndef KP_EST_INTERNAL_H
#define KP_EST_INTERNAL_H

#include "auth/otp.h"
#include "auth/psk.h"
#include "ca/ca.h"
#include "est/est.h"
#include "est/ratelimit.h"
#include "est/refusals.h"
#include "pki/csr.h"
#include "pki/kek.h"
#include "pki/trust.h"

/* One label, ready to serve: its CA and the answers that never change. */
struct est_label {
    const struct label_cfg *cfg; /* borrowed from the config */
    struct ca *ca;
    unsigned char
        *csrattrs_der; /* /csrattrs answer (RFC 7030 4.5.2); /cacerts is ca->cacerts_der */
    size_t csrattrs_der_len;
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
    struct psk_table *psk;                /* coap.psk_file, NULL when none */
};

/* Add a part (der is stolen) and make the answer EST_DONE. */
void est_answer_part(struct est_answer *ans, enum est_media media, unsigned char *der, size_t len,
                     bool secret);
/* The same with a copy of der. */
void est_answer_part_copy(struct est_answer *ans, enum est_media media, const unsigned char *der,
                          size_t len);
/* Drop any parts and refuse with err (KP_ERR_PENDING: hold); detail NULL: the table's text. */
void est_answer_fail(struct est_answer *ans, enum kp_err err, const char *detail);
/* The certificate answer of the enroll operations: certs-only PKCS#7, or the
 * certificate alone when accept asks for application/pkix-cert (RFC 9148 5.3). */
enum kp_err est_answer_cert(struct est_answer *ans, X509 *cert, enum est_media accept);

void est_cacerts(struct est_server *srv, const struct est_label *l, const struct est_request *req,
                 struct est_answer *ans);
void est_csrattrs(struct est_server *srv, const struct est_label *l, const struct est_request *req,
                  struct est_answer *ans);
/* simpleenroll, simplereenroll (RFC 7030 4.2) and serverkeygen (4.4): one
 * pipeline of authentication, approval, policy, issuance and audit. */
void est_enroll(struct est_server *srv, const struct est_label *l, const struct est_request *req,
                struct est_answer *ans);

/* A DTLS PSK as the credential of an enrollment (docs/coap.md). KP_OK with
 * *out (borrowed from the server's table) when req->psk_identity is in the
 * table, its label is l and l allows PSKs; KP_ERR_UNAUTHORIZED for an
 * unknown identity, KP_ERR_FORBIDDEN otherwise (simplereenroll included:
 * it renews a certificate, which a PSK is not); *why says which. */
enum kp_err est_psk_authenticate(const struct est_server *srv, const struct est_label *l,
                                 const struct est_request *req, const struct psk_entry **out,
                                 const char **why);
/* What a PSK may certify: its identity as entity, as otp_subject = "entity"
 * rules an OTP (auth/otpbind.c), never the CA's own name. KP_ERR_FORBIDDEN
 * with *why otherwise. */
enum kp_err est_psk_check_csr(const struct est_label *l, const struct psk_entry *e,
                              const struct csr *csr, const char **why);

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
/* The answer: the key part (PKCS#8, or EnvelopedData when protected) then
 * the certificate part. recip is the client certificate for SKG_ASYMMETRIC. */
enum kp_err skg_respond(const struct skg_plan *plan, EVP_PKEY *key, X509 *cert, X509 *recip,
                        enum est_media accept, struct est_answer *ans);

#endif
