/* Shared by the est/ operation files; not part of the core's interface. */
#ifndef KP_EST_INTERNAL_H
#define KP_EST_INTERNAL_H

#include "auth/otp.h"
#include "ca/ca.h"
#include "est/est.h"
#include "est/ratelimit.h"

#define EST_CT_CERTS "application/pkcs7-mime; smime-type=certs-only"
#define EST_CT_CSRATTRS "application/csrattrs"

/* One label, ready to serve: its CA and the answers that never change. */
struct est_label {
    const struct label_cfg *cfg; /* borrowed from the config */
    struct ca *ca;
    char *cacerts_b64; /* /cacerts body */
    size_t cacerts_b64_len;
    char *csrattrs_b64; /* /csrattrs body */
    size_t csrattrs_b64_len;
};

struct est_server {
    const struct kp_config *cfg; /* borrowed */
    struct store *store;         /* borrowed */
    unsigned char otp_key[OTP_KEY_LEN];
    struct est_label *labels;
    size_t nlabels;
    struct ratelimit *auth_failures; /* per client address and per entity */
};

/* Set a 200 answer with an owned base64 body. */
void est_response_ok(struct est_response *resp, const char *content_type, char *body, size_t len);
/* 1 when the header's media type (before any ';') equals type, ignoring case and spaces. */
int est_media_type_is(const char *header, const char *type);

void est_cacerts(struct est_server *srv, const struct est_label *l, const struct est_request *req,
                 struct est_response *resp);
void est_csrattrs(struct est_server *srv, const struct est_label *l, const struct est_request *req,
                  struct est_response *resp);
/* simpleenroll and simplereenroll (RFC 7030 4.2). */
void est_enroll(struct est_server *srv, const struct est_label *l, const struct est_request *req,
                struct est_response *resp);

#endif
